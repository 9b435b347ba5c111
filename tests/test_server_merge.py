"""`/merge`: sources merged as they arrive, a failing source isolated, no task left behind.

Over a real uvicorn (`ssenb.serve`). The task checks look at the server's own event loop
(`handle._loop`) after a real client disconnect: the seed's merge leaked its tasks there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-merge") as handle:
        yield handle


def _read(url: str, headers: dict[str, str] | None = None) -> tuple[int, list[Event]]:
    response = httpx.get(url, headers=headers or {}, timeout=20)
    return response.status_code, EventParser().feed(response.content)


def _by_source(events: list[Event]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for event in events:
        if event.event == "message" and event.data != "[DONE]":
            item = event.json()
            found.setdefault(item["source"], []).append(item["value"])
    return found


def _merge_tasks(handle: ServerHandle) -> list[str]:
    """Names of the merge source tasks alive on the server's loop right now."""

    async def names() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("ssenb-merge")]

    assert handle._loop is not None
    return asyncio.run_coroutine_threadsafe(names(), handle._loop).result(5)


def test_every_source_arrives_tagged_then_done(demo: ServerHandle) -> None:
    status, events = _read(f"{demo.url}/merge?sources=3&n=4&interval=0.01")
    assert status == 200
    assert _by_source(events) == {"A": [1, 2, 3, 4], "B": [2, 4, 6, 8], "C": [3, 6, 9, 12]}
    assert events[-1].data == "[DONE]"
    assert events[-2].id == "4,4,4"  # the id is every source's cursor


def test_items_are_merged_as_they_arrive(demo: ServerHandle) -> None:
    _, events = _read(f"{demo.url}/merge?sources=2&n=6&interval=0.03")
    order = [e.json()["source"] for e in events[:-1]]
    assert order.index("B") < len(order) - 1 - order[::-1].index("A")  # interleaved
    assert order[0] == "A"  # A is the fastest source (B waits 1.5x as long)


@pytest.mark.parametrize("fail", [0, 1, 2], ids=["first-fails", "middle-fails", "last-fails"])
def test_a_failing_source_gives_an_error_event_and_the_rest_go_on(
    demo: ServerHandle, fail: int
) -> None:
    started = time.monotonic()
    status, events = _read(f"{demo.url}/merge?sources=3&n=6&interval=0.01&fail={fail}")
    assert time.monotonic() - started < 2.0  # no hang waiting for the dead source (~0.15 s)
    assert status == 200
    name = "ABC"[fail]
    errors = [e.json() for e in events if e.event == "error"]
    assert errors == [
        {"source": name, "error": "SourceFailed", "message": f"source {name} failed after 3 values",
         "fatal": False},
    ]  # fmt: skip
    values = _by_source(events)
    assert len(values[name]) == 3
    assert all(len(v) == 6 for source, v in values.items() if source != name)
    assert events[-1].data == "[DONE]"


def test_twenty_sources_with_one_failing(demo: ServerHandle) -> None:
    _, events = _read(f"{demo.url}/merge?sources=20&n=5&interval=0.01&fail=19")
    values = _by_source(events)
    assert sorted(values) == [chr(ord("A") + k) for k in range(20)]
    assert [len(values[s]) for s in sorted(values)] == [5] * 19 + [2]
    assert events[-1].data == "[DONE]"
    assert _merge_tasks(demo) == []


def test_a_resume_restarts_each_source_after_its_cursor(demo: ServerHandle) -> None:
    url = f"{demo.url}/merge?sources=3&n=4&interval=0.01&fail=1"
    _, whole = _read(url)
    cut = whole[4]
    _, rest = _read(url, {"Last-Event-ID": cut.id})
    before, after = _by_source(whole[:5]), _by_source(rest)
    for source, values in _by_source(whole).items():
        assert before.get(source, []) + after.get(source, []) == values
    assert [e.event for e in whole].count("error") == 1
    assert [e.event for e in whole[:5] + rest].count("error") == 1
    assert rest[-1].data == "[DONE]"


RESUMES = [("4,3,4", 204), ("9,9,9", 204), ("1,2", 422), ("a,b,c", 422)]


@pytest.mark.parametrize(("last", "status"), RESUMES,
                         ids=["at-the-end", "past-it", "too-few", "not-counts"])  # fmt: skip
def test_resume_ids_past_the_end_or_malformed(demo: ServerHandle, last: str, status: int) -> None:
    url = f"{demo.url}/merge?sources=3&n=4&interval=0.01&fail=1"
    assert httpx.get(url, headers={"Last-Event-ID": last}).status_code == status


def test_a_client_disconnect_cancels_every_source_task(demo: ServerHandle) -> None:
    url = f"{demo.url}/merge?sources=5&n=100000&interval=0.01"
    with httpx.stream("GET", url, timeout=10) as response:
        parser, events = EventParser(), []
        chunks = response.iter_bytes()  # kept: a dropped iterator closes the connection
        for chunk in chunks:
            events += parser.feed(chunk)
            if len(events) >= 10:
                break
        assert len(_merge_tasks(demo)) == 5  # the check sees them while they run
    # leaving the block closes the connection: a real client disconnect
    deadline = time.monotonic() + 5
    while (_merge_tasks(demo) or demo.streams) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _merge_tasks(demo) == []
    assert demo.streams == 0


BAD = ["sources=0", "sources=21", "n=0", "interval=-1", "sources=2&fail=2", "fail=-1"]


@pytest.mark.parametrize("query", BAD, ids=BAD)
def test_bad_parameters_get_422_before_streaming(demo: ServerHandle, query: str) -> None:
    response = httpx.get(f"{demo.url}/merge?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")


def test_the_index_page_lists_merge(demo: ServerHandle) -> None:
    assert "GET /merge" in httpx.get(f"{demo.url}/").text
