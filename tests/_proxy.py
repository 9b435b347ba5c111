"""An asyncio TCP fault proxy on 127.0.0.1 for the fault-injection tests.

It sits between a client and an origin and, per connection, forwards the response until a
random byte offset, then moves the cut to the nearest position of a chosen kind and ends
the connection there:

    mid-line       between two bytes of one line (neither is CR or LF)
    mid-utf8       before a UTF-8 continuation byte (a multi-byte character split in two)
    cr-lf          between the CR and the LF of a CRLF line end (or of chunk framing)
    chunk-framing  inside a chunk-size line of a chunked body
    anywhere       the fallback when no other kind occurs in the bytes at hand

It ends a cut connection with a FIN (`close`) or a RST (`SO_LINGER` 0, then abort), can
stall a connection briefly (below the client's idle timeout) or for good (a `stall` cut:
the client's idle timeout must end it), and can refuse connections for a while by closing
its listening socket. Everything it did is counted in `cuts` (keyed by (kind, how)),
`stalls` and `refusals`. All randomness comes from one seeded `random.Random`.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["KINDS", "FaultProxy", "Faults", "LoopThread", "find_cut"]

T = TypeVar("T")
KINDS = ("mid-line", "mid-utf8", "cr-lf", "chunk-framing")
KEEP = 16  # bytes held back while looking for a cut, so patterns across reads are found
_CHUNK_HEAD = re.compile(rb"\r\n([0-9a-fA-F]+)\r\n")


class LoopThread:
    """An asyncio loop in a daemon thread: `run(coro)` from test code, blocking."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def close(self) -> None:
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(_cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def find_cut(kind: str, data: bytes | bytearray, start: int) -> int | None:
    """The first position p >= max(start, 1) where a cut between data[p-1] and data[p] is of
    `kind` (p is then the number of bytes forwarded), or None when there is none yet."""
    start = max(start, 1)
    end = len(data)
    if kind == "anywhere":
        return start if start < end else None
    if kind == "chunk-framing":
        m = _CHUNK_HEAD.search(data, max(start - 3, 0))
        if m is None:
            return None
        # after a size digit, or between the CR and LF ending the size line
        spots = [*range(m.start(1) + 1, m.end(1) + 1), m.end(1) + 1]
        return spots[m.start() % len(spots)]
    for p in range(start, end):
        a, b = data[p - 1], data[p]
        if kind == "mid-line":
            if a not in (10, 13) and b < 0x80 and b not in (10, 13):
                return p
        elif kind == "mid-utf8":
            if 0x80 <= b < 0xC0:
                return p
        elif kind == "cr-lf":
            if a == 13 and b == 10:
                return p
        else:
            raise ValueError(f"unknown cut kind {kind!r}")
    return None


@dataclass(frozen=True)
class Faults:
    """What the proxy does to each connection; probabilities are per connection.

    cut: chance to cut at all; offsets: the range the random offset (bytes of the response,
    headers included) is drawn from; rst: chance a cut ends with RST instead of FIN;
    stall: chance of a short pause (`stall_s` seconds) inside the body; hang: chance of a cut
    that stalls for good instead (the client's idle timeout ends it); refuse: chance that
    after a cut the proxy refuses new connections for `refuse_s` seconds.
    """

    cut: float = 1.0
    offsets: tuple[int, int] = (300, 9000)
    kinds: tuple[str, ...] = KINDS
    rst: float = 0.5
    stall: float = 0.1
    stall_s: float = 0.05
    hang: float = 0.0
    refuse: float = 0.0
    refuse_s: float = 0.1


NONE = Faults(cut=0.0, stall=0.0)


class FaultProxy:
    """Forward 127.0.0.1:`port` to 127.0.0.1:`upstream`, injecting `faults`.

    Start and stop it on a `LoopThread` (`loop.run(proxy.start())`); `upstream` may be
    changed at any time (the next connection goes to the new origin).
    """

    def __init__(self, upstream: int, faults: Faults = NONE, *, seed: int = 0) -> None:
        self.upstream = upstream
        self.faults = faults
        self.rand = random.Random(seed)
        self.port = 0
        self.cuts: Counter[tuple[str, str]] = Counter()
        self.stalls = 0
        self.refusals = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total_cuts(self) -> int:
        return sum(self.cuts.values())

    def kinds_cut(self) -> Counter[str]:
        """Cuts per kind (FIN and RST together)."""
        out: Counter[str] = Counter()
        for (kind, _how), n in self.cuts.items():
            out[kind] += n
        return out

    async def start(self) -> FaultProxy:
        await self._listen()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def refuse_for(self, seconds: float) -> None:
        """Close the listening socket now (connections are refused) and reopen it later.
        Call on the proxy's loop."""
        if self._server is None or not self._server.is_serving():
            return
        self.refusals += 1
        self._server.close()

        async def reopen() -> None:
            await asyncio.sleep(seconds)
            if not self._stopped:
                await self._listen()

        self._spawn(reopen())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            u_reader, u_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            _abort(c_writer, rst=True)
            return
        up = asyncio.get_running_loop().create_task(_copy(c_reader, u_writer))
        self._tasks.add(up)
        up.add_done_callback(self._tasks.discard)
        try:
            await self._down(u_reader, c_writer, up)
        except (ConnectionError, OSError):
            pass
        finally:
            up.cancel()
            _abort(u_writer, rst=False)
            if not c_writer.is_closing():
                c_writer.close()

    async def _down(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: asyncio.Task[None]
    ) -> None:
        """Origin to client, with this connection's faults; `up` ends when the client
        closes its side."""
        f, rand = self.faults, self.rand
        cutting = rand.random() < f.cut
        target = rand.randint(*f.offsets)
        stall_at = rand.randint(*f.offsets) if rand.random() < f.stall else -1
        hang = rand.random() < f.hang
        how = "rst" if rand.random() < f.rst else "fin"
        refuse = rand.random() < f.refuse
        kinds = list(f.kinds)
        rand.shuffle(kinds)
        pending = bytearray()
        base = 0  # stream offset of pending[0]
        while True:
            data = await reader.read(65536)
            if not data:
                break
            pending += data
            if 0 <= stall_at < base + len(pending):
                stall_at = -1
                self.stalls += 1
                await asyncio.sleep(f.stall_s)
            if cutting and base + len(pending) > target:
                start = max(target - base, 1)
                for kind in [*kinds, "anywhere"]:
                    p = find_cut(kind, pending, start)
                    if p is not None and (kind != "anywhere" or len(pending) > start + KEEP):
                        writer.write(bytes(pending[:p]))
                        await writer.drain()
                        if hang:  # silent until the client's idle timeout gives up
                            self.cuts[("hang", "stall")] += 1
                            await asyncio.wait([up], timeout=30)
                            return
                        self.cuts[(kind, how)] += 1
                        _abort(writer, rst=how == "rst")
                        if refuse:
                            self.refuse_for(f.refuse_s)
                        return
            keep = KEEP if cutting else 0
            n = len(pending) - keep
            if n > 0:
                writer.write(bytes(pending[:n]))
                del pending[:n]
                base += n
                await writer.drain()
        if pending:
            writer.write(bytes(pending))
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Client to origin, unchanged; the origin's side is half-closed at the client's EOF."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


def _abort(writer: asyncio.StreamWriter, *, rst: bool) -> None:
    """End a connection: RST (SO_LINGER 0, then abort) or an orderly close (FIN)."""
    transport = writer.transport
    if transport.is_closing():
        return
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    else:
        transport.close()
