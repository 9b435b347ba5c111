"""Serialise events to `text/event-stream` bytes.

Fields that would change the stream's framing are rejected, never stripped (a newline in
`event` or `id` would let data inject fields; NUL makes browsers ignore an id). Data is
split on CR, LF and CRLF only, the three line ends a parser recognises, so `data` round-trips
through `EventParser` with its line ends normalised to LF.
"""

from __future__ import annotations

from ._errors import SSEEncodeError
from ._models import Event

__all__ = ["encode", "encode_comment"]


def _data_lines(data: str) -> str:
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in data:
        return "data: " + data.replace("\n", "\ndata: ") + "\n"
    return "data: " + data + "\n"


def _shown(value: object, limit: int = 60) -> str:
    """`value`'s repr for an error message, cut to about `limit` characters: a hostile or
    huge field must not turn one message into megabytes."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} in repr"
    return f"{text[:limit]}... ({size})"


def _utf8(text: str) -> bytes:
    try:  # zero-cost in CPython 3.11+ unless it raises
        return text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from json.loads('"\\ud800"')
        raise SSEEncodeError(f"not encodable as UTF-8: {exc.reason} at {exc.start}") from exc


def encode(event: Event) -> bytes:
    """Encode one event as UTF-8 bytes ending with the blank line that dispatches it.

    `event="message"` (the default) writes no `event:` line; an empty `id` writes no `id:`.
    Raises `SSEEncodeError` for a CR/LF in `event` or `id`, NUL in `id`, a `retry` that is
    not a non-negative int, or a lone surrogate (text that has no UTF-8 form).
    """
    etype, data, eid, retry = event
    if not eid and retry is None and (etype == "message" or not etype):
        if "\n" not in data and "\r" not in data:
            try:  # the hot path, inlined
                return ("data: " + data + "\n\n").encode()
            except UnicodeEncodeError:
                pass  # _utf8 below raises the documented error
        return _utf8(_data_lines(data) + "\n")
    head = ""
    if etype and etype != "message":
        if "\n" in etype or "\r" in etype:
            raise SSEEncodeError(f"newline in event type {_shown(etype)}")
        head = "event: " + etype + "\n"
    if eid:
        if "\n" in eid or "\r" in eid or "\0" in eid:
            raise SSEEncodeError(f"newline or NUL in id {_shown(eid)}")
        head += "id: " + eid + "\n"
    if retry is not None:
        if type(retry) is not int or retry < 0:
            raise SSEEncodeError(f"retry must be a non-negative int, not {_shown(retry)}")
        head += "retry: " + str(retry) + "\n"
    return _utf8(head + _data_lines(data) + "\n")


def encode_comment(text: str = "") -> bytes:
    """Encode a comment (a heartbeat, say): one `: ` line per line of `text`.

    Comments dispatch nothing. No blank line is added, so even clients that wrongly dispatch
    empty blocks (httpx-sse 0.4 after an id was seen) see no phantom event.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        return b":\n"
    return _utf8(": " + text.replace("\n", "\n: ") + "\n")
