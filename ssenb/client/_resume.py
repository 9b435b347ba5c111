"""Telling a server that resumed from one that replays: `ReplayGuard`, pure, no I/O.

Many SSE servers ignore `Last-Event-ID` (the examples of sse-starlette, `fastapi.sse`,
aiohttp-sse and express all do): a reconnection gets the whole stream again. A browser
shows it twice; ssenb must not. The guard judges each reconnection by its first event
whose id differs from the one the client resumed from:

- an id this stream never delivered: the server resumed, everything goes through;
- an id it already delivered (one of the ids kept from each connection's first and last
  reads, or a number not above the resume id when both are numbers): the server replays.
  After a clean end the stream is over (the caller ends it and warns); after a drop the
  replay is skipped up to and including the resume id (for counted ids: up to the first
  larger one), and what follows is new.

Events carrying the resume id itself (id-less events, or a server re-sending the last
event) cannot prove anything: they go through, except copies of what was delivered: the
last event, or (type and data alike) one of the first events of a connection, such as a
`connected` greeting that a replaying server sends again before its ids. The cost is per
read, and only until the verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

from .._models import Event

__all__ = ["KEPT_IDS", "ReplayGuard"]

KEPT_IDS = 4096  # ids remembered per stream (from each connection's first and last reads)
KEPT_OPENINGS = 64  # (type, data) of a connection's first events remembered, per stream
_id = attrgetter("id")


def _numeric_before(eid: str, start: str) -> bool:
    """Both ids are counts and `eid` is not after `start` (bounded, never a huge int())."""
    if not (eid.isdigit() and start.isdigit() and eid.isascii() and start.isascii()):
        return False
    a, b = eid.lstrip("0"), start.lstrip("0")
    return (len(a), a) <= (len(b), b)


class ReplayGuard:
    """What one stream delivered (bounded), and the verdict on its current reconnection."""

    __slots__ = ("_after", "_openings", "_seen", "last", "phase", "start")

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}
        self._openings: dict[tuple[str, str], None] = {}  # first events' (type, data)
        self.last: Event | None = None  # the last event delivered
        self.start = ""  # the id the current connection resumed from
        self.phase = "done"  # "judge" (no verdict yet), "skip" (inside a replay), "done"
        self._after = False  # skipping: the resume id was seen in the replay

    @property
    def judging(self) -> bool:
        """The current connection has not yet shown that it resumed."""
        return self.phase != "done"

    def remember(self, events: Sequence[Event], first: bool = False) -> None:
        """Keep the ids of a read that was delivered (a connection's first and last ones);
        of a connection's `first` read also its opening events' type and data."""
        if not events:
            return
        if first and len(self._openings) < KEPT_OPENINGS:
            self._openings.update((ev[:2], None) for ev in events[:KEPT_OPENINGS])
        self.last = events[-1]
        seen = self._seen
        seen.update(dict.fromkeys(map(_id, events)))
        seen.pop("", None)
        if len(seen) > KEPT_IDS:
            keep = list(seen)[-KEPT_IDS // 2 :]
            self._seen = dict.fromkeys(keep)

    def arm(self, start: str) -> None:
        """A reconnection resuming from `start` begins: judge it (only a stream with ids)."""
        self.start = start
        self.phase = "judge" if start else "done"
        self._after = False

    def _known(self, eid: str) -> bool:
        return eid in self._seen or _numeric_before(eid, self.start)

    def screen(self, events: list[Event]) -> tuple[list[Event], bool]:
        """The events of this read that are new, and whether a replay was found in it."""
        if self.phase == "judge":
            start = self.start
            for k, ev in enumerate(events):
                eid = ev.id
                if eid == start:
                    continue
                if self._known(eid):
                    self.phase = "skip"
                    return self._skip(events[k:]), True
                self.phase = "done"
                return [e for e in events[:k] if self._new(e)] + events[k:], False
            return [e for e in events if self._new(e)], False
        return self._skip(events), False

    def _new(self, event: Event) -> bool:
        """An event carrying the resume id is new unless it copies one delivered before."""
        return event != self.last and event[:2] not in self._openings

    def _skip(self, events: list[Event]) -> list[Event]:
        """Drop a replay up to and including the events that carry the resume id."""
        start = self.start
        for k, ev in enumerate(events):
            eid = ev.id
            if eid == start:
                self._after = True
                continue
            counted = eid.isdigit() and start.isdigit()
            if self._after or (counted and not _numeric_before(eid, start)):
                self.phase = "done"
                return events[k:]
        return []
