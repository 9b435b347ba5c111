"""`POST /jobs` and `GET /jobs/{job_id}/progress`: pushed progress, as issue 6 says.

Over a real uvicorn (`ssenb.serve`), read with ssenb's `EventSource` and raw httpx. Steps are
short (tens of ms), so a listener that polled instead of being pushed would miss steps: every
test that reads a whole job checks the steps arrive contiguous.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-jobs") as handle:
        yield handle


def _start(demo: ServerHandle, **body: Any) -> str:
    response = httpx.post(f"{demo.url}/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def _listen(demo: ServerHandle, job_id: str, **kw: Any) -> list[Event]:
    with ssenb.EventSource(f"{demo.url}/jobs/{job_id}/progress", **kw) as source:
        return list(source)  # ends quietly at [DONE]


def _steps(events: list[Event]) -> list[int]:
    return [e.json()["step"] for e in events if e.event == "progress"]


def _assert_contiguous(steps: list[int], last: int) -> None:
    assert steps == list(range(steps[0], last + 1)), steps


def test_a_job_pushes_every_step_then_completes(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=8, interval=0.1)  # long enough to join before step 1
    events = _listen(demo, job_id)
    _assert_contiguous(_steps(events), 8)
    progress = events[-2].json()
    assert (progress["progress"], progress["status"]) == (100, "running")
    assert progress["message"] == "Processing step 8/8"
    assert events[-1].event == "complete"
    assert events[-1].json() | {"job_id": ""} == {
        "job_id": "", "progress": 100, "step": 8, "steps": 8,
        "status": "completed", "message": "Job completed successfully",
    }  # fmt: skip
    ids = [int(e.id) for e in events]
    assert ids == sorted(set(ids))


def test_a_job_that_fails_sends_an_error_event(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=10, interval=0.1, fail_at=4)
    events = _listen(demo, job_id)
    _assert_contiguous(_steps(events), 3)
    assert events[-1].event == "error"
    failure = events[-1].json()
    assert (failure["status"], failure["step"], failure["error"]) == ("failed", 3, "RuntimeError")
    assert "step 4 failed" in failure["message"]


def test_several_listeners_each_get_the_whole_job(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=30, interval=0.05)
    url = f"{demo.url}/jobs/{job_id}/progress"

    async def listen() -> list[Event]:
        async with ssenb.EventSource(url) as source:
            return [event async for event in source]

    async def main() -> list[list[Event]]:
        return await asyncio.gather(*(listen() for _ in range(4)))

    results = asyncio.run(main())
    for events in results:
        _assert_contiguous(_steps(events), 30)
        assert events[-1].event == "complete"
    tails = {tuple(e.data for e in events[-3:]) for events in results}
    assert len(tails) == 1  # the same events, pushed to everyone


def test_a_late_listener_first_gets_the_current_state(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=20, interval=0.05)
    time.sleep(0.4)
    events = _listen(demo, job_id)
    steps = _steps(events)
    assert steps[0] >= 3  # not replayed from step 0: the state now, then what follows
    _assert_contiguous(steps, 20)


def test_a_listener_after_the_end_gets_the_final_state(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=2, interval=0)
    _listen(demo, job_id)
    events = _listen(demo, job_id)
    assert [e.event for e in events] == ["complete"]


def test_a_resumed_listener_continues_and_past_the_end_gets_204(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=30, interval=0.02)
    url = f"{demo.url}/jobs/{job_id}/progress"
    first: list[Event] = []
    with ssenb.EventSource(url) as source:
        for event in source:
            first.append(event)
            if len(first) == 3:
                break
    resumed = _listen(demo, job_id, last_event_id=first[-1].id)
    assert int(resumed[0].id) > int(first[-1].id)
    assert resumed[-1].event == "complete"
    last = httpx.get(url, headers={"Last-Event-ID": resumed[-1].id})
    assert (last.status_code, last.content) == (204, b"")


def test_unknown_jobs_get_404_before_streaming(demo: ServerHandle) -> None:
    response = httpx.get(f"{demo.url}/jobs/nope/progress")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_finished_jobs_expire(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=1, interval=0, expire=0.3)
    _listen(demo, job_id)
    assert httpx.get(f"{demo.url}/jobs/{job_id}/progress").status_code == 200
    time.sleep(0.3 * 5)
    assert httpx.get(f"{demo.url}/jobs/{job_id}/progress").status_code == 404


def test_a_body_is_optional(demo: ServerHandle) -> None:
    response = httpx.post(f"{demo.url}/jobs")
    assert response.status_code == 201
    assert response.json()["steps"] == 100
    assert response.json()["progress_url"] == f"/jobs/{response.json()['job_id']}/progress"


BAD_BODIES = [
    ({"steps": 0}, "steps"), ({"steps": "many"}, "steps"), ({"interval": -1}, "interval"),
    ({"steps": 5, "fail_at": 6}, "fail_at"), ({"fail_at": 0}, "fail_at"),
    ({"expire": -1}, "expire"), ({"stpes": 5}, "stpes"),
]  # fmt: skip


BAD_IDS = ["no-steps", "steps-not-int", "negative-interval", "fail-after-the-end",
           "fail-at-zero", "negative-expire", "unknown-field"]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), BAD_BODIES, ids=BAD_IDS)
def test_bad_bodies_get_422_naming_the_problem(
    demo: ServerHandle, body: dict[str, Any], field: str
) -> None:
    response = httpx.post(f"{demo.url}/jobs", json=body)
    assert response.status_code == 422
    assert field in response.text


def test_the_wire_format_names_each_event(demo: ServerHandle) -> None:
    job_id = _start(demo, steps=2, interval=0)
    time.sleep(0.2)
    raw = httpx.get(f"{demo.url}/jobs/{job_id}/progress").content
    assert raw.startswith(b"event: complete\nid: ")
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")
    assert EventParser().feed(raw)[0].json()["status"] == "completed"


def test_the_index_page_lists_the_job_endpoints(demo: ServerHandle) -> None:
    page = httpx.get(f"{demo.url}/").text
    assert "POST /jobs" in page
    assert "GET /jobs/{job_id}/progress" in page
