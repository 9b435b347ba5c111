"""Node's `eventsource` package (a WHATWG EventSource, as browsers behave) against every
finite demo producer of `ssenb.serve()`.

A browser-style client reconnects after every end, so a producer must tell it to stop: each
one carries ids, and answers the resume past its last id with 204, which fails the
connection for good. Issue 28 found `/errors` without ids replayed every ~3 s. The script
(tests/node/consume.mjs, deps pinned by tests/node/package-lock.json) follows all the
streams at once; the fixture installs its deps with `npm ci` into a cache folder when they
are missing. Every stream must close by itself, each event arrive exactly once, and `/flaky`
resume across its cuts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _apps import LIMIT

import ssenb
from ssenb.server import ServerHandle

NODE_DIR = Path(__file__).parent / "node"
BOUND = 20.0  # seconds the script may run; each stream needs ~3 s (one reconnect wait)


def _deps_dir() -> Path:
    """A folder with the script and `npm ci`'s node_modules, keyed by the lock file."""
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    base = Path(os.environ.get("SSENB_NODE_CACHE", Path.home() / ".cache" / "ssenb-node"))
    where = base / hashlib.sha256(lock).hexdigest()[:16]
    if not (where / "node_modules" / "eventsource").is_dir():
        where.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(NODE_DIR / name, where / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=where, check=True, timeout=300, capture_output=True,
        )  # fmt: skip
    shutil.copy(NODE_DIR / "consume.mjs", where / "consume.mjs")
    return where


@pytest.fixture(scope="module")
def node() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    return _deps_dir()


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="node-peers") as handle:
        yield handle


def _follow(node: Path, streams: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = subprocess.run(
        ["node", "consume.mjs", json.dumps(streams), str(BOUND)],
        cwd=node, capture_output=True, text=True, timeout=BOUND + LIMIT, check=True,
    )  # fmt: skip
    results: list[dict[str, Any]] = json.loads(run.stdout)
    return results


# path, event names the stream uses, connections a browser opens (cuts + 1)
PRODUCERS = [
    ("/stream?n=5&interval=0", [], 1),
    ("/ticks?n=50&rate=0", [], 1),
    ("/flaky?n=12&every=5&retry=50", [], 3),
    ("/chat?prompt=two%20words&delay=0", [], 1),
    ("/heartbeat?every=0.05&heartbeat=0.02&n=3", [], 1),
    ("/errors?fail_after=2", ["connected", "item_error", "error"], 1),
    ("/merge?sources=2&n=4&interval=0.01&fail=1", ["error"], 1),
]


def _ssenb_view(url: str, field: str) -> list[tuple[str, str]]:
    """(event, id or data) of every event through ssenb's own client: what Node must get."""
    with ssenb.EventSource(url) as es:
        return [(ev.event, getattr(ev, field)) for ev in es]


def test_every_demo_producer_ends_a_browser_client_with_each_event_once(
    node: Path, demo: ServerHandle
) -> None:
    job = httpx.post(f"{demo.url}/jobs", json={"steps": 5, "interval": 0.05}, timeout=LIMIT)
    job_path = job.json()["progress_url"]
    streams = [{"url": demo.url + path, "events": names} for path, names, _ in PRODUCERS]
    streams.append({"url": demo.url + job_path, "events": ["progress", "complete", "error"]})
    results = _follow(node, streams)
    for (path, _, opens), seen in zip(PRODUCERS, results[:-1], strict=True):
        messages = [m for m in seen["messages"] if m["data"] != "[DONE]"]
        got = [(m["type"], m["lastEventId"]) for m in messages]
        assert len({eid for _, eid in got}) == len(got), path  # every id once
        if path.startswith("/merge"):  # sources race: order and cursor ids differ per run
            got = sorted((m["type"], m["data"]) for m in messages)
            assert got == sorted(_ssenb_view(demo.url + path, "data")), path
        else:
            assert got == _ssenb_view(demo.url + path, "id"), path
        assert seen["opens"] == opens, path  # /flaky: resumed across both cuts
        assert seen["closed"], path  # stopped by itself, not by the time bound
        assert seen["failures"][-1]["code"] == 204, path  # the resume past the end
        assert seen["ms"] < BOUND * 1000, path
    jobs = results[-1]
    ids = [int(m["lastEventId"]) for m in jobs["messages"] if m["data"] != "[DONE]"]
    assert ids == sorted(set(ids))
    assert ids[-1] == 6  # 5 steps and `complete`: live, so it may join after the first ones
    assert jobs["messages"][-2]["type"] == "complete"
    assert (jobs["closed"], jobs["failures"][-1]["code"]) == (True, 204)


def test_a_server_error_event_reaches_the_connection_error_listener(
    node: Path, demo: ServerHandle
) -> None:
    """The `error` name collides with the EventSource's own connection-error event: the
    same listener gets both, told apart only by `data` (see notebooks/10_error_events)."""
    (seen,) = _follow(node, [{"url": f"{demo.url}/errors?fail_after=1", "events": []}])
    fatal = [m for m in seen["messages"] if m["type"] == "error"]
    assert len(fatal) == 1
    assert json.loads(fatal[0]["data"])["fatal"] is True
    assert [f["code"] for f in seen["failures"]] == [None, 204]  # the clean end, then 204
