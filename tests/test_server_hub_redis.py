"""The Redis hub backend against a real `redis-server` on a free loopback port: ids are stream
ids in stream order, batched publishing, the password never shown, a publish Redis does not
take as a typed error, exact resume on another server process, a Redis restart surfaced to
the client. What every backend does (resume, gap, order, fan-out, stop, stats) is
tests/test_hub_contract.py.

Skipped when `redis-server` is not installed, except on CI (`CI` set), where that fails.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
import redis
from _apps import wait_until
from _hubs import serve_hub
from _redis import RedisProc, own_redis, redis_server, require_redis_server, serve_process, store

import ssenb
from ssenb import Event, EventParser, Hub
from ssenb.server import ServerHandle

__all__ = ["own_redis", "redis_server"]  # fixtures

require_redis_server()


def _serve(hub: Hub) -> ServerHandle:
    return serve_hub(hub, heartbeat=0.5)


def _events(url: str, last_event_id: str | None = None, *, until: Any) -> list[Event]:
    """Read `url` until `until(events)` is true (or the stream ends)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[Event] = []
    parser = EventParser()
    with httpx.Client(timeout=10) as client, client.stream("GET", url, headers=headers) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            events.extend(parser.feed(chunk))
            if until(events):
                break
    return events


# -- the backend ------------------------------------------------------------------------


def test_start_does_not_apply_to_redis() -> None:
    with pytest.raises(ValueError, match="start does not apply"):
        Hub(backend="redis://127.0.0.1:1/0", start=1)


@pytest.mark.parametrize("n", [1, 999, 2_500], ids=["one", "one-call", "three-calls"])
def test_publish_many_returns_every_id_in_stream_order(redis_server: RedisProc, n: int) -> None:
    hub = redis_server.hub(buffer=100_000)
    events = [Event(event="e" if i % 2 else "message", data=str(i)) for i in range(n)]
    ids = hub.publish_many(events)
    stored = store(hub).client.xrange(store(hub).stream)
    assert ids == [eid.decode() for eid, _ in stored]
    assert [fields[b"d"].decode() for _, fields in stored] == [str(i) for i in range(n)]
    assert [fields.get(b"e") for _, fields in stored][:2] == [None, b"e"][: min(n, 2)]
    assert hub.stats["published"] == n
    hub.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://me:s3cret@127.0.0.1:1/2?stream=s", "redis://me:***@127.0.0.1:1/2?stream=s"),
        ("redis://127.0.0.1:1/0?stream=s", "redis://127.0.0.1:1/0?stream=s"),
    ],
    ids=["password", "user-and-password", "no-password"],
)
def test_the_password_never_shows(url: str, shown: str) -> None:
    hub = Hub(backend=url)
    assert (hub.url, hub.backend) == (shown, shown)
    with pytest.raises(ssenb.SSEHubUnavailable) as info:  # nothing listens on port 1
        hub.publish("x")
    assert "s3cret" not in f"{info.value} {info.value.url} {hub!r}"
    hub.close()


def test_a_publish_redis_does_not_take_raises_a_typed_error(own_redis: RedisProc) -> None:
    hub = own_redis.hub()
    first = hub.publish("stored")
    own_redis.stop()
    with pytest.raises(ssenb.SSEHubUnavailable) as info:
        hub.publish_many(["a", "b"])
    err = info.value
    assert isinstance(err, ssenb.SSEError)
    assert isinstance(err, ConnectionError)
    assert store(hub).stream in err.message
    assert "nothing stored" in err.message
    assert (err.added, err.last_event_id) == ([], "")
    assert isinstance(err.__cause__, redis.RedisError)
    with pytest.raises(ssenb.SSEHubUnavailable):
        _ = hub.stats
    own_redis.start()
    assert hub.publish("again") > first  # the same hub goes on once Redis is back
    hub.close()


# -- several servers, one stream ----------------------------------------------------------


def test_a_client_moving_to_the_other_server_loses_and_repeats_nothing(
    redis_server: RedisProc,
) -> None:
    stream = f"t-{uuid.uuid4().hex[:8]}"
    hubs = [Hub(backend=redis_server.url(stream)) for _ in range(2)]
    publisher = Hub(backend=redis_server.url(stream))
    with _serve(hubs[0]) as a, _serve(hubs[1]) as b:
        ids = publisher.publish_many([f"x{i}" for i in range(50)])
        first = _events(a.url + "/hub", ids[0], until=lambda ev: len(ev) >= 20)[:20]
        rest = _events(b.url + "/hub", first[-1].id, until=lambda ev: ev and ev[-1].id == ids[-1])
    got = first + rest
    assert [e.id for e in got] == ids[1:]
    assert [e.data for e in got] == [f"x{i}" for i in range(1, 50)]
    for hub in (*hubs, publisher):
        hub.close()


def test_two_processes_serve_one_stream_and_resume_across_them(redis_server: RedisProc) -> None:
    hub_url = redis_server.url()
    publisher = Hub(backend=hub_url)
    with serve_process(hub_url) as a, serve_process(hub_url) as b:
        ids = [httpx.post(a + "/hub", json={"n": i}).json()["id"] for i in range(5)]
        ids += [httpx.post(b + "/hub", json={"n": i}).json()["id"] for i in range(5, 10)]
        ids += publisher.publish_many([orjson.dumps({"n": i}).decode() for i in range(10, 30)])
        first = _events(a + "/hub", ids[0], until=lambda ev: len(ev) >= 12)[:12]
        rest = _events(b + "/hub", first[-1].id, until=lambda ev: ev and ev[-1].id == ids[-1])
    got = first + rest
    assert [e.id for e in got] == ids[1:]
    assert [orjson.loads(e.data)["n"] for e in got] == list(range(1, 30))
    publisher.close()


def test_a_redis_restart_mid_stream_is_reported_never_silent(own_redis: RedisProc) -> None:
    hub = own_redis.hub()
    with _serve(hub) as handle:
        url = handle.url + "/hub"
        ids = hub.publish_many(["before-1", "before-2"])
        before = _events(url, ids[0], until=lambda ev: ev and ev[-1].id == ids[-1])
        assert [e.data for e in before] == ["before-2"]
        with httpx.Client(timeout=10) as client, client.stream("GET", url) as live:
            parser, seen = EventParser(), []
            chunks = live.iter_raw()
            wait_until(lambda: hub.stats["subscribers"] == 1)
            time.sleep(0.2)
            own_redis.stop()
            for chunk in chunks:  # the stream must end with an error event, not hang
                seen.extend(parser.feed(chunk))
        assert [e.event for e in seen] == ["error"]
        assert orjson.loads(seen[0].data)["error"] == "RedisUnavailable"
        own_redis.start()  # empty: the stream is gone, new ids restart from the clock
        after = hub.publish("after")
        got = _events(url, ids[-1], until=lambda ev: ev and ev[-1].id == after)
    assert got[0].event == "gap"
    assert orjson.loads(got[0].data)["reason"] == "unknown"
    assert [e.data for e in got[1:]] == ["after"]
    hub.close()
