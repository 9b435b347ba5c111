"""The demo producers, endpoint by endpoint, as DESIGN.md's table says.

Read over a real uvicorn (`ssenb.serve`) with raw httpx bytes and the core parser (exact wire
format), and with ssenb's own `EventSource` where reconnecting is the point.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-demo") as handle:
        yield handle


def _read(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, list[Event]]:
    response = httpx.get(url, headers=headers or {}, timeout=10)
    return response.status_code, response.content, EventParser().feed(response.content)


# -- /stream -----------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0, 0.01], ids=["unthrottled", "paced"])
def test_stream_counts_with_ids_then_done(demo: ServerHandle, interval: float) -> None:
    n = 4
    status, body, events = _read(f"{demo.url}/stream?n={n}&interval={interval}")
    assert status == 200
    assert [e.id for e in events[:-1]] == [str(i) for i in range(1, n + 1)]
    assert [e.json() for e in events[:-1]] == [
        {"count": i, "message": f"Update {i}"} for i in range(1, n + 1)
    ]
    assert events[-1].data == "[DONE]"
    assert body.endswith(b"data: [DONE]\n\n")
    assert body.startswith(b"id: 1\ndata: ")


def test_stream_defaults_are_ten_events_half_a_second_apart(demo: ServerHandle) -> None:
    started = time.monotonic()
    _, _, events = _read(f"{demo.url}/stream")
    took = time.monotonic() - started
    assert len(events) == 11
    assert 9 * 0.5 * 0.9 <= took < 9 * 0.5 * 5


def test_stream_resumes_after_last_event_id(demo: ServerHandle) -> None:
    _, _, events = _read(f"{demo.url}/stream?n=5&interval=0", {"Last-Event-ID": "2"})
    assert [e.id for e in events[:-1]] == ["3", "4", "5"]
    assert events[-1].data == "[DONE]"


# -- the end of a stream: 204 past the end, 422 on bad values -----------------------------------

PAST_THE_END = [
    ("/stream?n=3&interval=0", "3"),
    ("/stream?n=3&interval=0", "99"),
    ("/ticks?n=5&rate=0", "5"),
    ("/flaky?n=4", "4"),
    ("/heartbeat?n=2&every=0", "2"),
]


@pytest.mark.parametrize(("path", "last"), PAST_THE_END, ids=[f"{p}#{i}" for p, i in PAST_THE_END])
def test_a_resume_past_the_last_id_gets_204(demo: ServerHandle, path: str, last: str) -> None:
    response = httpx.get(demo.url + path, headers={"Last-Event-ID": last}, timeout=5)
    assert response.status_code == 204
    assert response.content == b""


BAD_VALUES = [
    "/stream?n=0",
    "/stream?n=10000001",
    "/stream?interval=-1",
    "/stream?interval=61",
    "/stream?n=ten",
    "/ticks?rate=-1",
    "/ticks?n=-1",
    "/flaky?every=0",
    "/flaky?retry=-5",
    "/heartbeat?heartbeat=0",
    "/errors?fail_after=-1",
]


@pytest.mark.parametrize("path", BAD_VALUES, ids=BAD_VALUES)
def test_invalid_values_get_422_before_streaming(demo: ServerHandle, path: str) -> None:
    response = httpx.get(demo.url + path, timeout=5)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")


def test_a_last_event_id_that_is_not_a_count_gets_422(demo: ServerHandle) -> None:
    response = httpx.get(demo.url + "/stream?n=2", headers={"Last-Event-ID": "abc"}, timeout=5)
    assert response.status_code == 422
    assert "Last-Event-ID" in response.json()["detail"]


# -- /ticks ------------------------------------------------------------------------------------


def test_ticks_unthrottled_are_contiguous_numeric_events(demo: ServerHandle) -> None:
    n = 3000
    _, _, events = _read(f"{demo.url}/ticks?n={n}&rate=0")
    assert [e.id for e in events[:-1]] == [str(i) for i in range(1, n + 1)]
    payloads = [e.json() for e in events[:-1]]
    assert all(set(p) == {"t", "value"} for p in payloads)
    assert all(isinstance(p["t"], float) and isinstance(p["value"], float) for p in payloads)
    assert abs(payloads[-1]["t"] - time.time()) < 60
    assert events[-1].data == "[DONE]"


def test_ticks_keep_their_rate_and_resume_with_the_same_values(demo: ServerHandle) -> None:
    n, rate = 10, 50
    started = time.monotonic()
    _, _, events = _read(f"{demo.url}/ticks?n={n}&rate={rate}")
    took = time.monotonic() - started
    assert (n - 1) / rate * 0.8 <= took < (n - 1) / rate * 5
    _, _, resumed = _read(f"{demo.url}/ticks?n={n}&rate=0", {"Last-Event-ID": "6"})
    assert [e.id for e in resumed[:-1]] == ["7", "8", "9", "10"]
    assert [e.json()["value"] for e in resumed[:-1]] == [e.json()["value"] for e in events[6:-1]]


def test_ticks_are_endless_by_default(demo: ServerHandle) -> None:
    parser, events = EventParser(), []
    with httpx.stream("GET", demo.url + "/ticks?rate=200", timeout=5) as response:
        for chunk in response.iter_raw():
            events += parser.feed(chunk)
            if len(events) >= 30:
                break
    assert [e.id for e in events[:30]] == [str(i) for i in range(1, 31)]
    assert all(e.data != "[DONE]" for e in events)


# -- /flaky --------------------------------------------------------------------------------------


def test_flaky_truncates_the_body_every_few_events_and_resumes(demo: ServerHandle) -> None:
    n, every, retry = 12, 5, 250
    last, seen, connections, truncated = "", [], 0, 0
    while connections < 10:
        connections += 1
        parser = EventParser(last_event_id=last)
        headers = {"Last-Event-ID": last} if last else {}
        try:
            with httpx.stream(
                "GET",
                f"{demo.url}/flaky?n={n}&every={every}&retry={retry}",
                headers=headers,
                timeout=5,
            ) as response:
                if response.status_code == 204:
                    break
                batch: list[Event] = []
                for chunk in response.iter_raw():
                    batch += parser.feed(chunk)
        except httpx.RemoteProtocolError:
            truncated += 1
        assert batch[0].retry == retry  # every connection restates its retry
        seen += [e for e in batch if e.data != "[DONE]"]
        last = parser.last_event_id
    assert [e.id for e in seen] == [str(i) for i in range(1, n + 1)]
    assert truncated == (n - 1) // every
    assert connections == truncated + 2  # then the clean end with [DONE], then 204


def test_flaky_read_by_ssenb_eventsource_loses_and_repeats_nothing(demo: ServerHandle) -> None:
    n, every = 23, 4
    with ssenb.EventSource(f"{demo.url}/flaky?n={n}&every={every}&retry=10") as source:
        ids = [e.id for e in source]
        reconnects = source.reconnects
    assert ids == [str(i) for i in range(1, n + 1)]
    assert reconnects >= n // every


# -- /heartbeat and /errors ----------------------------------------------------------------------


def test_heartbeat_sends_comments_while_idle(demo: ServerHandle) -> None:
    status, body, events = _read(f"{demo.url}/heartbeat?every=0.35&heartbeat=0.1&n=2")
    assert status == 200
    assert [e.id for e in events[:-1]] == ["1", "2"]
    assert events[-1].data == "[DONE]"
    before_first = body[: body.index(b"id: 1")]
    assert before_first.count(b": ping\n") >= 2
    assert body.count(b": ping\n") >= 4


def test_errors_sends_connected_data_item_error_then_a_fatal_error(demo: ServerHandle) -> None:
    status, _, events = _read(f"{demo.url}/errors?fail_after=2")  # ends cleanly
    assert status == 200
    kinds = ["connected", "message", "message", "item_error", "error", "message"]
    assert [e.event for e in events] == kinds
    assert events[0].json() == {"status": "ok"}
    assert [e.json() for e in events[1:3]] == [{"item": 1}, {"item": 2}]
    assert events[3].json()["item"] == 3
    fatal: dict[str, Any] = orjson.loads(events[4].data)
    assert fatal["fatal"] is True
    assert fatal["error"] == "RuntimeError"
    assert events[-1].data == "[DONE]"
    # ids, so a browser resumes after the clean end instead of replaying it, and stops at 204
    assert [e.id for e in events[:-1]] == ["1", "2", "3", "4", "5"]
    _, _, rest = _read(f"{demo.url}/errors?fail_after=2", {"Last-Event-ID": "3"})
    assert [(e.id, e.event) for e in rest[:-1]] == [("4", "item_error"), ("5", "error")]
    assert _read(f"{demo.url}/errors?fail_after=2", {"Last-Event-ID": "5"})[0] == 204


# -- / -------------------------------------------------------------------------------------------


def test_index_lists_every_endpoint_and_renders_data_as_text(demo: ServerHandle) -> None:
    response = httpx.get(demo.url + "/", timeout=5)
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for path in ("/stream", "/ticks", "/flaky", "/heartbeat", "/errors"):
        assert f"<code>GET {path}</code>" in page
    assert "new EventSource" in page
    assert "innerHTML" not in page
    assert "textContent" in page


def test_index_shows_endpoints_added_at_runtime_escaped(demo: ServerHandle) -> None:
    from ssenb.server import Endpoint, add_endpoint

    add_endpoint(demo.app, Endpoint("/late<x>", "-", "added <later>", "/late"))
    page = httpx.get(demo.url + "/", timeout=5).text
    assert "/late&lt;x&gt;" in page
    assert "added &lt;later&gt;" in page
    assert "<later>" not in page
