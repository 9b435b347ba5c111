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
"""

from __future__ import annotations

import codecs
from itertools import repeat

from ._errors import SSEEventTooLarge
from ._models import Event

__all__ = ["EventParser"]

_new = tuple.__new__


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
    events = list(map(_new, repeat(Event, n), rows))
    return events, buf[sep + 2 :]


class EventParser:
    """Turns the bytes of one event stream into `Event`s as soon as each is complete.

    Use one parser per connection; carry `last_event_id` into the next connection's parser.
    Not thread-safe.

    Args:
        last_event_id: the id to start from (a resumed connection's Last-Event-ID).
        max_event_bytes: bound on one event's size (counted in decoded characters,
            including its field names); None means unbounded.
    """

    __slots__ = (
        "_buf",
        "_cr",
        "_decoder",
        "_skipping",
        "_started",
        "last_event_id",
        "max_event_bytes",
        "retry",
    )

    def __init__(self, last_event_id: str = "", max_event_bytes: int | None = None) -> None:
        self.last_event_id = last_event_id
        self.max_event_bytes = max_event_bytes
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._cr = False
        self._started = False
        self._skipping = False

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
        buf = self._buf + text if self._buf else text
        if self._skipping:
            end = buf.find("\n\n")
            if end < 0:
                self._buf = buf[-1:]
                return []
            self._skipping = False
            buf = buf[end + 2 :]
        limit = self.max_event_bytes
        if limit is None or len(buf) <= limit:
            fast = _bulk_data_only(buf, self.last_event_id)
            if fast is not None:
                events, self._buf = fast
                return events
        blocks = buf.split("\n\n")
        rest = blocks.pop()
        events = []
        oversize = self._blocks(blocks, events, limit) if blocks else 0
        if limit is not None and len(rest) > limit:
            oversize = max(oversize, len(rest))
            self._skipping = True
            rest = rest[-1:]
        self._buf = rest
        if oversize:
            raise SSEEventTooLarge(
                f"event larger than max_event_bytes={limit} ({oversize} characters); "
                "it was skipped",
                last_event_id=self.last_event_id,
                events=events,
            )
        return events

    def close(self) -> None:
        """End of stream: an unterminated final block is dropped, as the standard says."""
        self._decoder.reset()
        self._buf = ""
        self._cr = False
        self._skipping = False

    def _blocks(self, blocks: list[str], events: list[Event], limit: int | None) -> int:
        """Interpret complete blocks into `events`; return the size of the largest block
        skipped for exceeding `limit` (0 when none was)."""
        append = events.append
        last_id = self.last_event_id
        oversize = 0
        for block in blocks:
            if limit is not None and len(block) > limit:
                oversize = max(oversize, len(block))
                continue
            # Fast path: one `data:` line, the shape of almost every event on the wire.
            if block[:5] == "data:" and "\n" not in block:
                data = block[6:] if block[5:6] == " " else block[5:]
                append(_new(Event, ("message", data, last_id, None)))
                continue
            if not block:
                continue
            data_lines: list[str] = []
            etype = ""
            retry = None
            for line in block.split("\n"):
                if not line or line[0] == ":":
                    continue
                colon = line.find(":")
                if colon < 0:
                    name, value = line, ""
                else:
                    name = line[:colon]
                    skip = 2 if line[colon + 1 : colon + 2] == " " else 1
                    value = line[colon + skip :]
                if name == "data":
                    data_lines.append(value)
                elif name == "event":
                    etype = value
                elif name == "id":
                    if "\0" not in value:
                        last_id = value
                elif name == "retry" and value.isascii() and value.isdigit():
                    retry = int(value)
                    self.retry = retry
            if data_lines:
                data = data_lines[0] if len(data_lines) == 1 else "\n".join(data_lines)
                append(_new(Event, (etype or "message", data, last_id, retry)))
        self.last_event_id = last_id
        return oversize
