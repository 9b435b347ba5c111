"""Redis stream ids, entries and stream state for the Redis hub backend (pure functions).

A stream id is `ms-seq`; the SSE id of an event is its stream id. An entry stores the data
under `d`, a non-default event type under `e` and a retry under `r`.
"""

from __future__ import annotations

import re
from typing import Any, TypedDict, cast

from ._backend import control_frame, encode_with_id

__all__ = [
    "STREAM_ID",
    "Entry",
    "StreamInfo",
    "before",
    "entries_of",
    "gap_frame",
    "overtaken",
    "parse_info",
    "sid",
    "unavailable",
    "wire",
]

STREAM_ID = re.compile(r"^\d+-\d+$")

#: one stream entry as redis-py returns it: (id, fields)
Entry = tuple[bytes, dict[bytes, bytes]]


class StreamInfo(TypedDict):
    """What the hub needs of XINFO STREAM."""

    length: int  # entries held
    first: str | None  # id of the oldest entry held
    last: str  # the last id the stream generated ("0-0": none)
    trimmed: bool  # entries were trimmed (more were added than are held)


def sid(value: str) -> tuple[int, int]:
    """A stream id as a comparable pair."""
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def before(entry_id: str) -> str:
    """The greatest stream id below `entry_id` (XREAD after it starts at `entry_id`)."""
    ms, seq = sid(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"


def wire(entry_id: bytes, fields: dict[bytes, bytes]) -> bytes:
    """One entry as an encoded event with its stream id."""
    data, etype = fields.get(b"d", b"").decode(), fields.get(b"e", b"message").decode()
    retry = fields.get(b"r")
    return encode_with_id(etype, data, entry_id.decode(), int(retry) if retry is not None else None)


def entries_of(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREAD reply (`[[stream, entries]]`; empty: none)."""
    return cast(list[Entry], reply[0][1]) if reply else []


def gap_frame(last_event_id: str, first: str | None, reason: str) -> bytes:
    """The `gap` event for a resume that cannot be exact (`missed` is unknown on a stream)."""
    gap = {"last_event_id": last_event_id, "first_id": first, "missed": None}
    return control_frame("gap", {**gap, "reason": reason})


def unavailable(stream: str, exc: BaseException) -> str:
    """The message of the `error` event that ends a stream when Redis fails."""
    return f"Redis stream {stream!r} unavailable ({type(exc).__name__}: {exc}); reconnect to resume"


def parse_info(raw: Any) -> StreamInfo:
    """XINFO STREAM's reply (or {} for a missing key) as first/last/length/trimmed."""
    if not isinstance(raw, dict):
        raw = {}

    def text(value: Any) -> str | None:
        return value.decode() if isinstance(value, bytes) else value

    first, length = raw.get("first-entry"), int(raw.get("length", 0))
    return {
        "length": length,
        "first": text(first[0]) if first else None,
        "last": text(raw.get("last-generated-id")) or "0-0",
        "trimmed": int(raw.get("entries-added", 0)) > length,
    }


def overtaken(info: StreamInfo, cursor: str) -> bool:
    """Entries after `cursor` may be gone: it is older than the oldest held entry (trimmed,
    or from an earlier incarnation of the stream). Conservative: when `cursor` was exactly
    the last entry trimmed nothing is lost, but the stream cannot tell."""
    first = info["first"]
    if first is None:  # empty: entries after `cursor` were issued and are gone
        return sid(cursor) < sid(info["last"])
    return sid(cursor) < sid(before(first))
