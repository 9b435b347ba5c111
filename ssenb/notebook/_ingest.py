"""What keeps a kernel responsive while a `watch()` ingests at full speed.

Two things stall a kernel's cells while a fast stream is consumed in its own thread:

1. The GIL. The consumer is CPU-bound; the kernel's main and IOPub threads get the GIL only
   when it is handed over (every `sys.getswitchinterval()`, 5 ms, if they ask). `Pacer`
   makes the consumer pause for one switch interval after every `yield_every` seconds of
   work, so a cell's handful of GIL hand-offs happen at once, not one per forced switch.
2. Full garbage collections. Each read creates ~1,000 `Event`s (tuples of a subclass,
   which CPython's collector tracks for life); those alive when a young collection runs are
   promoted, and every 25 % of the process's long-lived object count promoted triggers a
   full collection of every object in the kernel (imports, user data): 50-500 ms with the
   GIL held, about once a second at full ingest. `hold_gc` freezes the objects that exist
   when the first watch starts ingesting (`gc.freeze`, O(1)), so full collections scan only
   what was made since and stay short; the last watch to end unfreezes them (`gc.unfreeze`,
   O(1)), and garbage among them is collected as usual from then on. A process that froze
   objects itself (a pre-fork server) is left alone.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Pacer", "hold_gc"]

_lock = threading.Lock()
_holders = 0
_froze = False  # True when ssenb's own freeze is in effect


@contextmanager
def hold_gc() -> Iterator[None]:
    """While inside, the objects that existed when the first holder entered are frozen."""
    global _holders, _froze
    with _lock:
        _holders += 1
        if _holders == 1 and gc.get_freeze_count() == 0:
            gc.freeze()
            _froze = True
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _froze:
                _froze = False
                gc.unfreeze()


class Pacer:
    """Hands the GIL to the kernel's threads for one switch interval every `every` seconds
    of consumer work (None: never). Call `await pacer.step()` after each read."""

    def __init__(self, every: float | None) -> None:
        if every is not None and not every > 0:
            raise ValueError(f"yield_every must be > 0 seconds or None, not {every!r}")
        self.every = every
        self.pauses = 0
        self._since = time.perf_counter()

    async def step(self) -> None:
        every = self.every
        if every is not None and time.perf_counter() - self._since >= every:
            await asyncio.sleep(sys.getswitchinterval())  # the loop's select frees the GIL
            self.pauses += 1
            self._since = time.perf_counter()
