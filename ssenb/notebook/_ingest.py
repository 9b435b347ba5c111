"""What keeps a kernel responsive while a `watch()` ingests at full speed.

Three things slow a kernel's cells or the ingest while a fast stream is consumed in its own thread:

1. The GIL. The consumer is CPU-bound; the kernel's main and IOPub threads get the GIL only
   when it is handed over (every `sys.getswitchinterval()`, 5 ms, if they ask). `Pacer`
   makes the consumer pause for `PAUSE` (2 ms) after every `yield_every` seconds of work:
   a thread waiting for the GIL takes it at once when the consumer's select releases it, so
   a cell's handful of hand-offs happen together, not one per forced switch. The pause is
   short because everything idles during it (a server in the same process fills the socket
   and waits too): a 5 ms pause every 20 ms cost a fifth of the ingest rate; 1 ms let the
   busy-cell p99 drift up under load (A/B in one kernel: 55 ms at 1 ms, 49 at 2, 43 at 5).
2. Full garbage collections. Each read creates ~1,000 `Event`s (tuples of a subclass,
   which CPython's collector tracks for life); those alive when a young collection runs are
   promoted, and every 25 % of the process's long-lived object count promoted triggers a
   full collection of every object in the kernel (imports, user data): 50-500 ms with the
   GIL held, about once a second at full ingest. `hold_gc` freezes the objects that exist
   when the first watch starts ingesting (`gc.freeze`, O(1)), so full collections scan only
   what was made since and stay short; the last watch to end unfreezes them (`gc.unfreeze`,
   O(1)), and garbage among them is collected as usual from then on. A process that froze
   objects itself (a pre-fork server) is left alone.
3. Young collections. A young collection runs every 700 net allocations (CPython's default
   threshold) and walks every young container alive: while a read's ~1,000 `Event`s are
   alive, each of them is walked once or twice before it dies, about 10 % of the ingest's
   CPU. `hold_gc` raises the young threshold to `YOUNG_THRESHOLD` while holding (the dead
   events are already freed by reference counting, so a rarer collection walks no more)
   and puts back the process's own threshold when the last holder leaves.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["PAUSE", "YOUNG_THRESHOLD", "Pacer", "hold_gc"]

PAUSE = 0.002  # s the consumer sleeps at each pause: long enough for waiting threads to run

_lock = threading.Lock()
_holders = 0
_froze = False  # True when ssenb's own freeze is in effect
_threshold: tuple[int, int, int] | None = None  # the process's thresholds, while raised
YOUNG_THRESHOLD = 50_000  # net allocations between young collections while ingesting


@contextmanager
def hold_gc() -> Iterator[None]:
    """While inside, the objects that existed when the first holder entered are frozen and
    young collections are rarer (see the module doc); the last holder to leave undoes both."""
    global _holders, _froze, _threshold
    with _lock:
        _holders += 1
        if _holders == 1:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                _froze = True
            old = gc.get_threshold()
            if 0 < old[0] < YOUNG_THRESHOLD:  # 0: collection is off; leave that alone
                _threshold = old
                gc.set_threshold(YOUNG_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _threshold is not None:
                    if gc.get_threshold()[0] == YOUNG_THRESHOLD:  # not changed by someone since
                        gc.set_threshold(*_threshold)
                    _threshold = None
                if _froze:
                    _froze = False
                    gc.unfreeze()


class Pacer:
    """Hands the GIL to the kernel's threads for `PAUSE` s every `every` seconds of consumer
    work (None: never). Call `await pacer.step()` after each read."""

    def __init__(self, every: float | None) -> None:
        if every is not None and not every > 0:
            raise ValueError(f"yield_every must be > 0 seconds or None, not {every!r}")
        self.every = every
        self.pauses = 0
        self._since = time.perf_counter()

    async def step(self) -> None:
        every = self.every
        if every is not None and time.perf_counter() - self._since >= every:
            await asyncio.sleep(PAUSE)  # the loop's select frees the GIL
            self.pauses += 1
            self._since = time.perf_counter()
