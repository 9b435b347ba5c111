"""Re-running a cell replaces the watches it started (`ssenb/notebook/_cells.py`), in a real
kernel that receives execute requests carrying a `cellId` as JupyterLab sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from _kernel import Kernel, kernel

pytestmark = pytest.mark.slow

WATCH = 'subs.append(ssenb.watch(srv.url + "/ticks?rate=50", display=False))'
TWO = WATCH + "\n" + WATCH


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    with kernel(tmp_path_factory.mktemp("cells")) as k:
        k.ok('import json, ssenb\nsrv = ssenb.serve(name="cells")\nsubs = []')
        yield k
        k.ok("ssenb.stop_all()")


def _running(k: Kernel) -> list[bool]:
    return json.loads(k.value("json.dumps([s.running for s in subs])"))


# runs of cells (cell id, code) -> which of the watches started are still running
CASES = [
    ("a re-run replaces the watch", [("c1", WATCH), ("c1", WATCH)], [False, True]),
    ("two watches in one run both stay", [("c1", TWO)], [True, True]),
    ("a re-run replaces both", [("c1", TWO), ("c1", WATCH)], [False, False, True]),
    ("another cell leaves it alone", [("c1", WATCH), ("c2", WATCH)], [True, True]),
    ("no cell id: nothing is replaced", [(None, WATCH), (None, WATCH)], [True, True]),
]


@pytest.mark.parametrize(("runs", "running"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rerunning_a_cell_stops_the_watches_it_started(
    k: Kernel, runs: list[tuple[str | None, str]], running: list[bool]
) -> None:
    k.ok("for s in subs: s.stop()\nsubs.clear()")
    suffix = str(id(runs))  # cell ids unique to this case
    for cell, code in runs:
        k.ok(code, cell_id=None if cell is None else cell + suffix)
    assert _running(k) == running
    stopped = json.loads(k.value("json.dumps([s.status for s in subs if not s.running])"))
    assert set(stopped) <= {"stopped"}  # stopped, data kept


def test_a_replaced_watch_keeps_what_it_received(k: Kernel) -> None:
    k.ok("for s in subs: s.stop()\nsubs.clear()")
    k.ok(WATCH, cell_id="keep")
    k.ok("import time\nfor _ in range(200):\n    time.sleep(0.02)\n    if subs[0].events: break")
    k.ok(WATCH, cell_id="keep")
    got = json.loads(k.value("json.dumps([s.status for s in subs] + [len(subs[0].df) > 0])"))
    assert (got[0], got[2]) == ("stopped", True)  # the old one stopped, its rows kept
    assert got[1] in {"connecting", "open"}
