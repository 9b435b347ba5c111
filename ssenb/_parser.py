"""Incremental parser for `text/event-stream`, exactly per the WHATWG HTML standard
("Server-sent events": parsing an event stream, interpreting an event stream).

Why it is shaped like this:

1. It works on whole buffers, not lines. Bytes are decoded with an incremental UTF-8
   decoder (split characters wait for their tail; invalid bytes become U+FFFD), CR and CRLF
   are normalised to LF with two C-level `str.replace` calls, and the text is cut into
   blocks at every blank line with one `str.split("\\n\\n")`. Python code then runs once per
   *event*, not once per byte or line, with a fast path for the common one-line `data:` block.
2. A CR at the end of a chunk is already a complete line end, so it is turned into LF at
   once (the event it ends is dispatched without waiting); a LF starting the next chunk is
   then dropped, since CR+LF was one line end.
3. Lines split only on CR, LF and CRLF: never on U+2028, U+0085 or other separators that
   `str.splitlines()` would cut at.
4. Memory is bounded by `max_event_bytes`: an unterminated event that grows past it raises
   `SSEEventTooLarge` (carrying the events parsed before it) and the rest of that event is
   skipped, so the parser keeps working afterwards.
5. A chunk without any line end only lengthens the unterminated line: it is kept as a piece
   in a list and joined once when the line ends, so a long line costs linear time (re-joining
   the line on every chunk made a 16 MB line take seconds).
6. Every complete line acts when it arrives, as the standard says, on every path: `retry:`
   sets `retry` at once, even in a block never dispatched; `id:` and `event:` only fill the
   block's buffers. The bulk paths keep the text after the last blank line raw for the next
   feed, so they apply its complete `retry:` lines before returning.
7. Hostile values stay bounded: a `retry` of any length is clamped to `MAX_RETRY_MS` without
   building a huge int (Python refuses int() of more than 4,300 digits; RetryPolicy's
   `max_server_retry`, 60 s by default, caps the wait far lower), and an id longer than
   `max_id_bytes` is ignored like an id containing NUL, so it is never sent back as a
   `Last-Event-ID` header that breaks the 8 KiB header-line limit of common servers.
"""

from __future__ import annotations

import codecs
from itertools import repeat

from ._errors import SSEEventTooLarge
from ._models import Event

__all__ = ["EventParser"]

_new = tuple.__new__

MAX_RETRY_MS = 2**31 - 1  # ~24.8 days (browser timers' limit); larger `retry` is clamped
DEFAULT_MAX_ID_BYTES = 4096  # far above real ids, below common 8 KiB header-line limits
_RETRY_DIGITS = len(str(MAX_RETRY_MS))


def _retry_ms(value: str) -> int | None:
    """The standard's `retry` rule (ASCII digits only, else ignored), clamped to
    MAX_RETRY_MS. Leading zeros are dropped first so that int() only ever sees a few digits."""
    if not (value.isascii() and value.isdigit()):
        return None
    digits = value.lstrip("0")
    if len(digits) > _RETRY_DIGITS:
        return MAX_RETRY_MS
    return min(int(digits or "0"), MAX_RETRY_MS)


def _id_fits(value: str, limit: int | None) -> bool:
    """Whether an id of `value` is within `limit` UTF-8 bytes (None: no limit). A text of at
    most limit // 4 characters always fits, so only long ids are encoded to count bytes."""
    return limit is None or len(value) <= limit >> 2 or len(value.encode()) <= limit


def _bulk_data_only(buf: str, last_id: str) -> tuple[list[Event], str] | None:
    """All complete blocks in `buf` are single `data: ` lines: build them without a Python
    loop (C-level count/split plus map). Returns None when the buffer has any other shape."""
    sep = buf.rfind("\n\n")
    if sep < 0:
        return None
    complete = buf[:sep]
    values = ("\n\n" + complete).split("\n\ndata: ")
    # Every LF must belong to a "\n\ndata: " separator: then each block is one data line.
    if values[0] or complete.count("\n") != 2 * (len(values) - 2):
        return None
    del values[0]
    n = len(values)
    rows = zip(repeat("message", n), values, repeat(last_id, n), repeat(None, n), strict=True)
    return list(map(_new, repeat(Event, n), rows)), buf[sep + 2 :]


_PREFIXES = ("data: ", "id: ", "event: ")


def _bulk_uniform(buf: str, last_id: str, id_limit: int | None) -> tuple[list[Event], str] | None:
    """All complete blocks in `buf` have the first block's shape, e.g. `id: `, `data: ` (one
    line each, in the same order, no comments): cut each field into a column with C-level
    join/split instead of interpreting line by line. None when any block differs."""
    sep = buf.rfind("\n\n")
    if sep < 0:
        return None
    lines = buf[:sep].split("\n")
    shape: list[str] = []
    for line in lines:
        if not line:
            break
        prefix = next((p for p in _PREFIXES if line.startswith(p)), None)
        if prefix is None or prefix in shape:
            return None
        shape.append(prefix)
    m = len(shape)
    if "data: " not in shape or (len(lines) + 1) % (m + 1) or any(lines[m :: m + 1]):
        return None
    columns: dict[str, list[str]] = {}
    for j, prefix in enumerate(shape):
        cells = lines[j :: m + 1]
        joined = "\n".join(cells)
        values = joined[len(prefix) :].split("\n" + prefix)
        if len(values) != len(cells) or not joined.startswith(prefix):
            return None
        if prefix == "id: " and "\0" in joined:
            return None  # an id with NUL is ignored: the line-by-line path does that
        columns[prefix] = values
    n = len(columns["data: "])
    ids = columns.get("id: ")
    long_ids = ids is not None and id_limit is not None and max(map(len, ids)) > id_limit >> 2
    if long_ids and not all(_id_fits(i, id_limit) for i in ids or ()):
        return None  # the line-by-line path ignores the long ids one by one
    etypes = columns.get("event: ")
    if etypes is not None and "" in etypes:
        return None
    rows = zip(
        etypes or repeat("message", n),
        columns["data: "],
        ids or repeat(last_id, n),
        repeat(None, n),
        strict=False,
    )
    return list(map(_new, repeat(Event, n), rows)), buf[sep + 2 :]


class EventParser:
    """Turns the bytes of one event stream into `Event`s as soon as each is complete.

    Use one parser per connection; carry `last_event_id` into the next connection's parser.
    Not thread-safe.

    Args:
        last_event_id: the id to start from (a resumed connection's Last-Event-ID).
        max_event_bytes: bound on one event's size (decoded characters of its lines, field
            names included); None means unbounded.
        max_id_bytes: (keyword only) the longest id kept, in UTF-8 bytes; a longer `id:`
            line is ignored, as the standard ignores an id containing NUL, so the previous
            id stays and a 10 MB id is never echoed back as a `Last-Event-ID` header. None
            means unbounded. `DEFAULT_MAX_ID_BYTES` (4 KiB) by default.

    `last_event_id` is the standard's "last event ID string": it takes the id buffer's value
    (set by each `id:` line) only when a blank line dispatches the block, so an id inside a
    block that never completed is not reported as received. `retry` is the reconnection time
    in ms, set by each valid `retry:` line as soon as it is complete (also in a block never
    dispatched; `close()` keeps it), clamped to `MAX_RETRY_MS`.
    """

    MAX_RETRY_MS = MAX_RETRY_MS
    DEFAULT_MAX_ID_BYTES = DEFAULT_MAX_ID_BYTES

    __slots__ = (
        "_cr",
        "_data",
        "_decoder",
        "_drop_line",
        "_etype",
        "_id",
        "_line",
        "_parts",
        "_parts_len",
        "_retry",
        "_size",
        "_skipping",
        "_started",
        "last_event_id",
        "max_event_bytes",
        "max_id_bytes",
        "retry",
    )

    def __init__(
        self,
        last_event_id: str = "",
        max_event_bytes: int | None = None,
        *,
        max_id_bytes: int | None = DEFAULT_MAX_ID_BYTES,
    ) -> None:
        if max_id_bytes is not None and max_id_bytes < 0:
            raise ValueError(f"max_id_bytes must be >= 0 or None, got {max_id_bytes}")
        self.last_event_id = last_event_id
        self.max_event_bytes = max_event_bytes
        self.max_id_bytes = max_id_bytes
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._cr = False
        self._started = False
        self._line = ""  # unparsed text: the unterminated last line(s)
        self._parts: list[str] = []  # later pieces of that line (chunks without a line end)
        self._parts_len = 0
        self._reset_block()
        self._skipping = False  # an oversized event: ignore lines until its blank line
        self._drop_line = False  # ... and its oversized unterminated line until its end

    def _reset_block(self) -> None:
        self._data: list[str] = []
        self._etype = ""
        self._retry: int | None = None
        self._id = self.last_event_id  # the standard's "last event ID buffer"
        self._size = 0

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse `chunk` and return every event its blank lines completed (maybe none)."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._cr:
            self._cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if self._drop_line:
            end = text.find("\n")
            if end < 0:
                return []
            self._drop_line = False
            text = text[end + 1 :]
        if "\n" not in text:
            return self._extend_line(text)
        if self._parts:
            self._parts.append(text)
            text = "".join(self._parts)
            self._parts, self._parts_len = [], 0
        buf = self._line + text if self._line else text
        events: list[Event] = []
        limit = self.max_event_bytes
        idle = not (self._data or self._etype or self._skipping or self._retry is not None)
        small = limit is None or len(buf) <= limit  # then no event in buf can be oversized
        if idle and small and self._id == self.last_event_id:
            first = buf[:1]
            fast = None
            if first == "d" and buf[:6] == "data: ":
                fast = _bulk_data_only(buf, self.last_event_id)
            if fast is None and first in ("d", "i", "e"):
                fast = _bulk_uniform(buf, self.last_event_id, self.max_id_bytes)
            if fast is not None:
                # The tail after the last blank line stays raw (it holds no complete block)
                # and is parsed with the next chunk, so the next feed can take this path too;
                # only its complete `retry:` lines must act now.
                events, tail = fast
                self._line = tail
                if events:
                    self.last_event_id = self._id = events[-1].id
                if "retry" in tail:
                    self._pending_retry(tail)
                return events
        lines = buf.split("\n")
        self._line = lines.pop()
        oversize = self._lines(lines, events) if lines else 0
        if limit is not None and self._size + len(self._line) > limit:
            oversize = max(oversize, self._size + len(self._line))
            self._drop_line = bool(self._line)
            self._line = ""
            self._reset_block()
            self._skipping = True
        if oversize:
            raise self._too_large(oversize, events)
        return events

    def _pending_retry(self, tail: str) -> None:
        """Apply the complete `retry:` lines of `tail`, the raw start of a block not yet
        dispatched (they are interpreted again with it later, which changes nothing)."""
        for line in tail[: tail.rfind("\n") + 1].split("\n"):
            if line[:5] == "retry":
                name, _, value = line.partition(":")
                if name == "retry":
                    retry = _retry_ms(value[1:] if value[:1] == " " else value)
                    if retry is not None:
                        self.retry = retry

    def _too_large(self, size: int, events: list[Event]) -> SSEEventTooLarge:
        return SSEEventTooLarge(
            f"event larger than max_event_bytes={self.max_event_bytes} ({size} characters); "
            "it was skipped",
            last_event_id=self.last_event_id,
            events=events,
        )

    def _extend_line(self, text: str) -> list[Event]:
        """`text` holds no line end, so it only lengthens the unterminated line: keep it as
        a piece (joined when the line ends) and enforce the limit on the whole line."""
        self._parts.append(text)
        self._parts_len += len(text)
        limit = self.max_event_bytes
        if limit is not None:
            size = self._size + len(self._line) + self._parts_len
            if size > limit:
                self._drop_line = True
                self._line = ""
                self._parts, self._parts_len = [], 0
                self._reset_block()
                self._skipping = True
                raise self._too_large(size, [])
        return []

    @property
    def buffered(self) -> int:
        """Characters held for an event not yet complete (bounded by max_event_bytes)."""
        return len(self._line) + self._parts_len + sum(map(len, self._data))

    def close(self) -> None:
        """End of stream: an unterminated final block is dropped, as the standard says."""
        self._decoder.reset()
        self._line = ""
        self._parts, self._parts_len = [], 0
        self._cr = False
        self._skipping = False
        self._drop_line = False
        self._reset_block()

    def _lines(self, lines: list[str], events: list[Event]) -> int:
        """Interpret complete lines; dispatch at each blank line. Returns the size of the
        largest event skipped for exceeding max_event_bytes (0 when none was)."""
        append = events.append
        data = self._data
        etype, eid, retry, size = self._etype, self._id, self._retry, self._size
        skipping = self._skipping
        limit = self.max_event_bytes
        id_limit = self.max_id_bytes
        short_id = 1 << 62 if id_limit is None else (id_limit >> 2) + 4  # "id: " + value
        oversize = 0
        for line in lines:
            if not line:  # blank line: dispatch
                self.last_event_id = eid
                if data and not skipping:
                    value = data[0] if len(data) == 1 else "\n".join(data)
                    append(_new(Event, (etype or "message", value, eid, retry)))
                data = []
                etype, retry, size, skipping = "", None, 0, False
                continue
            first = line[0]
            if skipping or first == ":":
                continue
            if limit is not None:
                size += len(line)
                if size > limit:
                    oversize = max(oversize, size)
                    skipping, data, etype, retry = True, [], "", None
                    continue
            # Fast paths for the usual spelling ("name: value") of the usual fields.
            if first == "d" and line[:6] == "data: ":
                data.append(line[6:])
                continue
            if first == "i" and line[:4] == "id: ":
                if "\0" not in line and (len(line) <= short_id or _id_fits(line[4:], id_limit)):
                    eid = line[4:]
                continue
            if first == "e" and line[:7] == "event: ":
                etype = line[7:]
                continue
            colon = line.find(":")
            if colon < 0:
                name, value = line, ""
            else:
                name = line[:colon]
                value = (
                    line[colon + 2 :] if line[colon + 1 : colon + 2] == " " else line[colon + 1 :]
                )
            if name == "data":
                data.append(value)
            elif name == "id":
                if "\0" not in value and _id_fits(value, id_limit):
                    eid = value
            elif name == "event":
                etype = value
            elif name == "retry":
                value_ms = _retry_ms(value)
                if value_ms is not None:
                    retry = self.retry = value_ms
        self._data, self._etype, self._id, self._retry, self._size = data, etype, eid, retry, size
        self._skipping = skipping
        return oversize
