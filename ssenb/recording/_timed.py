"""`TimedRecorder`: what `JSONLRecorder` and `DatasetRecorder` share.

Both buffer in `write()` without a lock and rely on one daemon timer thread per recorder to
put the buffer on disk on time, whether or not events keep arriving; both are listed by
`ssenb.status()` and closed by `ssenb.stop_all()` while open; both are context managers. The
subclass sets up its own state, then calls `_start`; its `close` calls `_stop` first, so no
timer flush runs after the one `close` does itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from .. import _state

__all__ = ["TimedRecorder"]


class TimedRecorder:
    """A recorder's path and source, its timer thread, its registration and `with` use."""

    def __init__(
        self, path: str | os.PathLike[str], source: str | None, flush_interval: float
    ) -> None:
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0 seconds, not {flush_interval!r}")
        self.path = Path(path)
        self.source = source
        self.flush_interval = flush_interval
        self._lock = threading.Lock()  # held by flushes only, never by write()
        self._closing = False  # write() refuses from here on
        self._closed = threading.Event()  # ends the timer

    @property
    def written(self) -> int:
        """Events written so far (on disk or buffered)."""
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _tick(self) -> None:
        """One timer step (a flush when there is something to write)."""
        raise NotImplementedError

    def _start(self, name: str, period: float) -> None:
        """Start the timer thread (`_tick` every `period` s) and register as open."""
        self._timer = threading.Thread(target=self._run, args=(period,), name=name, daemon=True)
        self._timer.start()
        _state.register_recorder(self)

    def _run(self, period: float) -> None:
        while not self._closed.wait(period):
            self._tick()

    def _stop(self) -> None:
        """Refuse writes, unregister, and end the timer (joined unless `close` runs on it)."""
        self._closing = True
        _state.unregister_recorder(self)
        self._closed.set()
        if self._timer is not threading.current_thread():
            self._timer.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, written={self.written})"
