"""Crash-safe JSONL recording: `JSONLRecorder` (one of the two `Recorder`s).

Why it is shaped like this:

1. Each event is one orjson line (newline included) appended to a bytearray with one `+=`,
   atomic under the GIL, so `write()` takes no lock and reads no clock (both showed up in
   its profile). The buffer is written with one unbuffered `write` of whole lines when it
   passes 64 KiB, on `flush()`/`close()`, and by the timer below.
2. A background timer thread (one per recorder, a daemon) writes whatever is buffered every
   `flush_interval / 2`, whether or not events keep arriving: this is what guarantees the
   0.2 s bound. So a SIGKILL loses at most the last `flush_interval` seconds, and every line
   on disk is whole (no Python-level file buffer; only whole lines are ever written).
3. The file is opened in append mode and never truncated. If an earlier run was killed mid
   line, a newline is added first so that torn line stays alone on its own line (the loader
   reports it by number) instead of gluing onto our first record. A file this recorder
   created and never wrote a line to is removed on `close()`: a stream that brought nothing
   leaves no empty file behind.
4. An open recorder is in the runtime's registry: `ssenb.status()` lists it and
   `ssenb.stop_all()` closes (flushes) it.
"""

from __future__ import annotations

import os
import time

import orjson

from .._models import Event
from ._timed import TimedRecorder

__all__ = ["JSONLRecorder"]

_MAX_BUFFER = 64 << 10


class JSONLRecorder(TimedRecorder):
    """Append events to a JSONL file, one object per line, flushed at least every
    `flush_interval` seconds (by a background timer thread) and whenever the buffer passes
    64 KiB. Thread-safe. Usable as a context manager; `close()` flushes.

    Each line has keys `time` (UTC epoch seconds, float), `event`, `id`, `retry`, `data`
    (the raw string) and `source` (`source` given here, usually the stream's URL).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        source: str | None = None,
        flush_interval: float = 0.2,
    ) -> None:
        super().__init__(path, source, flush_interval)
        self._buf = bytearray()
        self._flushed = 0  # lines written to the file
        self._created = not self.path.exists()
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (closed by close())
        self._repair_tail()
        # Flushing whatever is buffered every half interval keeps any line's wait under
        # `flush_interval` without a clock read per write.
        self._start("ssenb-recorder", flush_interval / 2)

    def _repair_tail(self) -> None:
        size = self._file.seek(0, os.SEEK_END)
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    self._write_all(b"\n")

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            view = view[n or 0 :]

    def _tick(self) -> None:
        if self._buf:
            self.flush()

    @property
    def written(self) -> int:
        """Events written so far (on disk or buffered)."""
        return self._flushed + self._buf.count(b"\n")

    def write(self, event: Event, time: float | None = None) -> None:
        """Buffer one event (received at `time`, UTC epoch seconds; now by default)."""
        if self._closing:
            raise ValueError(f"recorder for {self.path} is closed")
        buf = self._buf
        # One whole line per `+=` (a single C call, so atomic under the GIL): a concurrent
        # flush takes only whole lines, and write() needs no lock.
        buf += orjson.dumps(
            {
                "time": _now() if time is None else time,
                "event": event.event,
                "id": event.id,
                "retry": event.retry,
                "data": event.data,
                "source": self.source,
            },
            option=_NEWLINE,
        )
        if len(buf) >= _MAX_BUFFER:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered now, in one write of whole lines."""
        with self._lock:
            if self._file.closed:
                return
            buf = self._buf
            n = len(buf)
            if n:
                data = bytes(buf[:n])  # lines appended meanwhile stay for the next flush
                del buf[:n]
                self._write_all(data)
                self._flushed += data.count(b"\n")

    def close(self) -> None:
        """Flush, stop the timer thread and close the file (idempotent). A file this
        recorder created and wrote nothing to is removed."""
        self._stop()
        with self._lock:
            if self._file.closed:
                return
            try:
                buf = self._buf
                if buf:
                    data = bytes(buf)
                    buf.clear()
                    self._write_all(data)
                    self._flushed += data.count(b"\n")
            finally:
                self._file.close()
                if self._created and not self._flushed:
                    self.path.unlink(missing_ok=True)


_now = time.time
_NEWLINE = orjson.OPT_APPEND_NEWLINE
