"""`ssenb.replay`: a recording served again with its types, ids, retry values and timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

import ssenb
from ssenb import Event, EventSource
from ssenb.recording import JSONLRecorder

EVENTS = [
    Event(event="start", data="go", id="a"),
    Event(data='{"n": 1}', id="b", retry=1500),
    Event(data="two\nlines", id="c"),
    Event(event="end", data='{"n": 3}', id="d"),
]
GAP = 0.2  # recorded seconds between events


@pytest.fixture(scope="module", autouse=True)
def demo_server() -> Iterator[None]:
    """Replay uses the running demo server or starts one; stop only one we caused."""
    from ssenb import _state

    before = _state.servers.get("demo")
    yield
    after = _state.servers.get("demo")
    if after is not None and after is not before:
        after.stop()


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl"
    with JSONLRecorder(path, source="http://127.0.0.1:1/orig") as rec:
        for i, ev in enumerate(EVENTS):
            rec.write(ev, time=1000.0 + i * GAP)
    return path


def _read(url: str, **kwargs: object) -> tuple[list[Event], float]:
    started = time.monotonic()
    with EventSource(url, reconnect="never", **kwargs) as source:  # type: ignore[arg-type]
        events = list(source)
    return events, time.monotonic() - started


def test_a_client_gets_the_recorded_events(recording: Path) -> None:
    events, _ = _read(ssenb.replay(recording, speed=0))
    assert events == EVENTS


@pytest.mark.parametrize(
    ("speed", "low", "high"),
    [(1.0, 0.6, 5 * 0.6), (2.0, 0.3, 5 * 0.3), (0, 0.0, 0.5)],
    ids=["recorded-pace", "twice-as-fast", "no-gaps"],
)
def test_relative_timing_divided_by_speed(
    recording: Path, speed: float, low: float, high: float
) -> None:
    events, took = _read(ssenb.replay(recording, speed=speed))
    assert len(events) == len(EVENTS)
    assert low * 0.9 <= took < high


@pytest.mark.parametrize(
    ("last_id", "ids"),
    [("b", ["c", "d"]), ("a", ["b", "c", "d"]), ("zzz", ["a", "b", "c", "d"])],
    ids=["middle", "first", "unknown-id-replays-from-the-start"],
)
def test_resumes_after_last_event_id(recording: Path, last_id: str, ids: list[str]) -> None:
    events, _ = _read(ssenb.replay(recording, speed=0), last_event_id=last_id)
    assert [ev.id for ev in events] == ids


def test_a_resume_past_the_end_gets_204(recording: Path) -> None:
    url = ssenb.replay(recording, speed=0)
    response = httpx.get(url, headers={"Last-Event-ID": "d"}, timeout=10)
    assert response.status_code == 204


def test_every_connection_replays_from_the_start(recording: Path) -> None:
    url = ssenb.replay(recording, speed=0)
    assert _read(url)[0] == _read(url)[0] == EVENTS


def test_rerunning_gives_the_same_url_and_rereads_the_file(recording: Path) -> None:
    url = ssenb.replay(recording, speed=0)
    with JSONLRecorder(recording) as rec:
        rec.write(Event(data="later", id="e"))
    assert ssenb.replay(recording, speed=0) == url
    assert [ev.id for ev in _read(url)[0]] == ["a", "b", "c", "d", "e"]


def test_collect_reads_a_replay_like_the_original(recording: Path) -> None:
    df = ssenb.collect(ssenb.replay(recording, speed=0))
    assert df["id"].tolist() == ["a", "b", "c", "d"]
    assert df["data.n"].tolist()[1:] == [1, pd.NA, 3]


def test_unknown_recording_is_404(recording: Path) -> None:
    url = ssenb.replay(recording, speed=0)
    base = url.rsplit("/", 1)[0]
    assert httpx.get(base + "/nope", timeout=10).status_code == 404


def test_negative_speed_is_rejected(recording: Path) -> None:
    with pytest.raises(ValueError, match="speed"):
        ssenb.replay(recording, speed=-1)
