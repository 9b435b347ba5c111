"""The memory backend of `Hub`: integer ids from `start` and caller-given ids, the exact
stats, a slow subscriber dropped with a final error event (and its connection cut), the
resume boundaries with their `missed` counts. What every backend does (fan-out, order, resume,
gap, close, heartbeats, stop) is tests/test_hub_contract.py. Streams go through a real
uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from _apps import wait_until
from _hubs import serve_hub, stalled_socket, subscribed

import ssenb
from ssenb import Event, EventParser, Hub
from ssenb.server import ServerHandle
from ssenb.server.hub import DROP_GRACE, MemoryBackend


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Hub, ServerHandle]]:
    """A served hub: buffer=5, queue=5 unless parametrized (indirect) with other settings."""
    hub = Hub(start=1, **getattr(request, "param", {"buffer": 5, "queue": 5}))
    assert isinstance(hub.store, MemoryBackend)
    with serve_hub(hub) as handle:
        yield hub, handle


# -- ids, stats, drops ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"buffer": -1}, "buffer >= 0"),
        ({"queue": 0}, "queue >= 1"),
        ({"start": 0}, "start must be"),
        ({"start": "tomorrow"}, "start must be"),
    ],
    ids=["negative-buffer", "empty-queue", "zero-start", "bad-start"],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Hub(**kwargs)


def test_ids_count_up_from_start_and_own_ids_are_kept() -> None:
    hub = Hub(start=1)
    sub = hub.subscribe()
    ids = [hub.publish("a"), hub.publish(Event(data="b", id="own")), hub.publish("c")]
    assert ids == ["1", "own", "3"]
    assert hub.publish_many(["d", "e"]) == ["4", "5"]
    assert asyncio.run(anext(sub))[1] == b"id: own\ndata: b\n\n"
    with pytest.raises(TypeError, match="bytes"):
        hub.publish(b"raw")  # type: ignore[arg-type]


def test_a_batch_with_a_refused_event_publishes_nothing() -> None:
    hub = Hub(start=1)
    with pytest.raises(ssenb.SSEEncodeError):
        hub.publish_many(["fine", Event(data="x", id="bad\nid"), "never"])
    assert hub.stats["published"] == 0
    assert hub.publish("next") == "1"


def test_stats_count_subscribers_published_dropped_buffered() -> None:
    hub = Hub(start=1, buffer=3, queue=2)
    subs = [hub.subscribe(), hub.subscribe()]
    hub.publish_many(str(i) for i in range(5))
    assert hub.stats == {
        "subscribers": 0,  # both fell more than 2 events behind: dropped
        "behind": 0,
        "published": 5,
        "dropped": 2,
        "buffered": 3,
        "first_id": "3",
        "last_id": "5",
    }
    assert all(s.dropped for s in subs)
    assert "2 dropped" in repr(hub)
    late = hub.subscribe()
    hub.publish("x")
    assert (hub.stats["subscribers"], hub.stats["behind"], late.last_event_id) == (1, 1, "5")


def test_a_dropped_subscriber_gets_one_error_event_then_ends() -> None:
    hub = Hub(start=1, buffer=10, queue=3)
    sub = hub.subscribe()
    hub.publish("first")

    async def consume() -> list[list[bytes]]:
        items = [await anext(sub)]  # takes id 1
        hub.publish_many(["a", "b", "c", "d"])  # 4 > queue behind
        return items + [batch async for batch in sub]

    items = asyncio.run(consume())
    assert items[0] == [b"id: 1\ndata: first\n\n"]
    (final,) = EventParser().feed(b"".join(items[1]))
    assert len(items) == 2
    assert (final.event, final.id) == ("error", "")
    assert final.json() == {
        "error": "SlowSubscriber",
        "message": "dropped: more than 3 events behind; reconnect to resume",
        "fatal": True,
        "last_event_id": "1",
    }


# -- a stalled subscriber -----------------------------------------------------------------


def _run_with_reader(stall: bool, n: int = 12_000) -> tuple[float, list[str], Hub, int, int]:
    """Publish n 1 KB events, paced by one healthy reader; optionally with a frozen peer."""
    hub = Hub(start=1, buffer=2_000, queue=2_000)
    pad = "x" * 1000
    with serve_hub(hub) as handle, subscribed(handle.url + "/hub") as reader:
        stalled = stalled_socket(handle.url) if stall else None
        wait_until(lambda: hub.stats["subscribers"] == (2 if stall else 1))
        got: list[str] = []

        def read() -> None:
            for chunk in reader.chunks:
                got.extend(e.id for e in reader.parser.feed(chunk))
                if got and got[-1] == str(n):
                    return

        thread = threading.Thread(target=read)
        started = time.perf_counter()
        thread.start()
        for lo in range(0, n, 100):
            wait_until(lambda lo=lo: lo - len(got) < 1_000)  # a steady publisher, not a flood
            hub.publish_many(f'{{"i":{i},"pad":"{pad}"}}' for i in range(lo, lo + 100))
        thread.join(30)
        took = time.perf_counter() - started
        if stalled is not None:
            wait_until(lambda: hub.stats["dropped"] == 1)
            wait_until(lambda: handle.streams == 1, timeout=DROP_GRACE * 5 + 5)  # its stream ended
            stalled.close()
        return took, got, hub, hub.stats["subscribers"], handle.streams


def test_a_stalled_subscriber_is_dropped_and_the_others_keep_full_speed() -> None:
    alone, got_alone, *_ = _run_with_reader(stall=False)
    beside, got_beside, hub, subscribers, streams = _run_with_reader(stall=True)
    assert got_alone == got_beside == [str(i) for i in range(1, 12_001)]
    assert (hub.stats["dropped"], subscribers, streams) == (1, 1, 1)
    assert beside < 5 * alone + 1.0, (alone, beside)


# -- resume -------------------------------------------------------------------------------

# buffer=5: after 12 events the hub holds ids 8..12; the client then publishes a marker, 13
RESUME = [
    ("7", ["8", "9", "10", "11", "12"], None),
    ("6", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": 1, "reason": "evicted"}),
    ("1", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": 6, "reason": "evicted"}),
    ("99", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": None, "reason": "unknown"}),
    ("abc", ["8", "9", "10", "11", "12"], {"first_id": "8", "missed": None, "reason": "unknown"}),
]


@pytest.mark.parametrize(
    ("last_event_id", "replayed", "gap"),
    RESUME,
    ids=["just-before-oldest", "one-too-old", "far-too-old", "future-id", "not-ours"],
)  # fmt: skip
def test_resume_is_exact_inside_the_buffer_and_a_gap_beyond(
    served: Any, last_event_id: str | None, replayed: list[str], gap: dict[str, Any] | None
) -> None:
    hub, handle = served
    hub.publish_many(f"e{i}" for i in range(1, 13))
    with subscribed(handle.url + "/hub", last_event_id) as reader:
        hub.publish("marker")
        events = reader.until_id("13")
    if gap is None:
        assert [e.event for e in events] == ["message"] * (len(replayed) + 1)
    else:
        assert (events[0].event, events[0].id) == ("gap", "")  # control frames carry no id
        assert events[0].json() == {"last_event_id": last_event_id, **gap}
        events = events[1:]
    assert [e.id for e in events] == [*replayed, "13"]
    assert [e.data for e in events] == [f"e{i}" for i in map(int, replayed)] + ["marker"]


def test_own_ids_resume_exactly_too(served: Any) -> None:
    hub, handle = served
    for name in ("a", "b", "c"):
        hub.publish(Event(data=name.upper(), id=name))
    with subscribed(handle.url + "/hub", "a") as reader:
        hub.publish(Event(data="D", id="d"))
        got = [(e.id, e.data) for e in reader.until_id("d")]
    assert got == [("b", "B"), ("c", "C"), ("d", "D")]


@pytest.mark.parametrize("served", [{"buffer": 50, "queue": 3}], ids=["queue=3"], indirect=True)
def test_a_client_dropped_for_lag_resumes_exactly_with_event_source(served: Any) -> None:
    hub, handle = served
    seen: list[Event] = []

    def first() -> None:
        wait_until(lambda: hub.stats["subscribers"] == 1)
        hub.publish("first")

    threading.Thread(target=first).start()
    with ssenb.EventSource(handle.url + "/hub", reconnect="auto") as source:
        for event in source:
            seen.append(event)
            if event.id == "1":  # now fall 20 events behind before reading on
                hub.publish_many(f"late {i}" for i in range(20))
            if event.id == "21":
                break
    errors = [e for e in seen if e.event == "error"]
    assert [orjson.loads(e.data)["last_event_id"] for e in errors] == ["1"]
    assert [e.id for e in seen if e.event == "message"] == [str(i) for i in range(1, 22)]
    assert source.reconnects == 1
