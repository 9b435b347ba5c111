"""`watch()` at full ingest: a read at a time, no Event objects kept, short GCs, a kernel that
answers cells (issue 27).

In a real kernel (bench/kernel.py, jupyter_client) with the demo server in the same kernel:
`/ticks?rate=0` is ingested with its view and DataFrame at >= 100 k events/s and a trivial
cell's round trip stays p99 <= 300 ms meanwhile (5x the promises of 500 k/s and 60 ms, for a
shared machine). In process: the `yield_every` knob, the GC hold, and that a finished watch
keeps its events as columns, not as millions of objects.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ssenb
from ssenb import Event
from ssenb.notebook import watch
from ssenb.notebook._ingest import YOUNG_THRESHOLD, Pacer, hold_gc

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with ssenb.serve(name="test-watch-ingest") as srv:
        yield srv.url


# -- in a real kernel ------------------------------------------------------------------------


@pytest.mark.slow
def test_kernel_ingests_fast_and_answers_cells(tmp_path: Path) -> None:
    out = tmp_path / "kernel.json"
    proc = subprocess.run(
        [sys.executable, "bench/kernel.py", "--quick", "--n", "400000", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fig = json.loads(out.read_text())
    assert fig["events"] == 400_000  # the bench itself checks status "done" and every row
    # the better of its two full watches (alone, and with cells probing): on a shared machine
    # one run of a few seconds can be starved by other processes
    assert max(fig["events_per_s_watch"], fig["events_per_s_watch_probed"]) >= 100_000, fig
    assert fig["busy_cells"] >= 5, fig  # cells really ran while the watch ingested
    assert fig["busy_p99_ms"] <= 300, fig
    assert "watch + cells (default)" in proc.stdout


# -- the knob --------------------------------------------------------------------------------


@pytest.mark.parametrize("every", [0, -1.0, math.nan], ids=["zero", "negative", "nan"])
def test_yield_every_must_be_positive_or_none(every: float) -> None:
    with pytest.raises(ValueError, match="yield_every"):
        watch("http://127.0.0.1:9/never", yield_every=every, display=False)


@pytest.mark.parametrize(
    ("every", "work", "pauses"),
    [
        (None, 0.03, 0),  # never pauses
        (0.01, 0.0, 0),  # no work yet: no pause
        (0.01, 0.03, 1),  # a slice of work done: one pause
        (10.0, 0.03, 0),  # a long slice: not yet
    ],
    ids=["none", "no-work", "after-a-slice", "long-slice"],
)
def test_pacer_pauses_after_each_slice_of_work(
    every: float | None, work: float, pauses: int
) -> None:
    async def run() -> Pacer:
        pacer = Pacer(every)
        pacer._since -= work  # as if `work` seconds of ingest had just happened
        await pacer.step()
        return pacer

    assert asyncio.run(run()).pauses == pauses


def test_a_paced_watch_still_gets_everything(demo_url: str) -> None:
    sub = watch(f"{demo_url}/ticks?rate=0&n=30000", yield_every=0.001, display=False)
    assert sub.wait(60)
    assert (sub.status, sub.view.count, len(sub.df)) == ("done", 30_000, 30_000)
    assert sub._pacer.pauses >= 1


# -- garbage collection ----------------------------------------------------------------------


def test_hold_gc_freezes_for_nested_holders_until_the_last_leaves() -> None:
    assert gc.get_freeze_count() == 0
    with hold_gc():
        assert gc.get_freeze_count() > 0
        with hold_gc():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0  # the inner holder leaving unfroze nothing
    assert gc.get_freeze_count() == 0


def test_hold_gc_leaves_a_freeze_it_did_not_make_alone() -> None:
    gc.freeze()
    try:
        with hold_gc():
            pass
        assert gc.get_freeze_count() > 0  # still frozen: not ssenb's to undo
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    ("before", "inside"),
    [
        ((700, 10, 10), (YOUNG_THRESHOLD, 10, 10)),
        ((2000, 5, 20), (YOUNG_THRESHOLD, 5, 20)),
        ((100_000, 10, 10), (100_000, 10, 10)),
        ((0, 10, 10), (0, 10, 10)),
    ],
    ids=["default raised", "custom raised, older gens kept", "already higher", "gc off"],
)
def test_hold_gc_makes_young_collections_rarer_and_restores_the_threshold(
    before: tuple[int, int, int], inside: tuple[int, int, int]
) -> None:
    old = gc.get_threshold()
    gc.set_threshold(*before)
    try:
        with hold_gc():
            with hold_gc():
                assert gc.get_threshold() == inside
            assert gc.get_threshold() == inside  # the inner holder leaving restored nothing
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*old)


def test_hold_gc_leaves_a_threshold_someone_changed_meanwhile() -> None:
    old = gc.get_threshold()
    try:
        with hold_gc():
            gc.set_threshold(1234, 10, 10)  # the user's own choice, made while ingesting
        assert gc.get_threshold() == (1234, 10, 10)
    finally:
        gc.set_threshold(*old)


def test_objects_are_frozen_only_while_a_watch_ingests(demo_url: str) -> None:
    sub = watch(f"{demo_url}/ticks?rate=50", display=False)
    try:
        while sub.view.count == 0 and sub.running:
            sub.wait(0.05)
        assert gc.get_freeze_count() > 0
    finally:
        sub.stop()
    assert gc.get_freeze_count() == 0


def _live_events() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Event)


def test_a_finished_watch_keeps_columns_not_event_objects(demo_url: str) -> None:
    before = _live_events()
    sub = watch(f"{demo_url}/ticks?rate=0&n=20000", view="log", display=False)
    assert sub.wait(60)
    kept = _live_events() - before
    assert kept <= 2 * 50, kept  # the log view's scrollback (50), not 20,000
    events = sub.events  # rebuilt on demand, equal to what was streamed
    assert [int(ev.id) for ev in events] == list(range(1, 20_001))
    assert events[-1] == Event(data=events[-1].data, id="20000")


@pytest.mark.parametrize(
    ("max_rows", "expected"),
    [(None, list(range(1, 2001))), (500, list(range(1501, 2001))), (0, [])],
    ids=["all", "newest-500", "none"],
)
def test_events_follow_max_rows(demo_url: str, max_rows: int | None, expected: Any) -> None:
    sub = watch(f"{demo_url}/ticks?rate=0&n=2000", max_rows=max_rows, display=False)
    assert sub.wait(30)
    assert [int(ev.id) for ev in sub.events] == expected
    assert len(sub.df) == len(expected)
