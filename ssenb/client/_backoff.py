"""`RetryPolicy`: how long `EventSource` waits before reconnecting; immutable and pure.

`bounds()` is a pure function of (attempt, server `retry:`), so tests check delays without
sleeping, and one policy can be shared by any number of streams.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before reconnecting; immutable, so it can be shared and injected.

    The base delay is the server's last `retry:` (capped at `max_server_retry` seconds, so a
    hostile or mistaken server cannot park a client for hours), else `initial`. The first
    reconnect waits the base exactly (`retry: 0` means at once, as the standard says);
    consecutive failures, with no event in between, grow it by `multiplier` from at least
    `floor` (so `retry: 0` and a server that closes at once cannot spin) up to `maximum`
    (or the server's base when that is larger); `jitter` spreads clients that failed
    together over [(1 - jitter) * d, d].

    Args (seconds unless noted):
        initial: delay when the server sent no `retry:`.
        maximum: ceiling of the exponential backoff.
        multiplier: growth per consecutive failure (>= 1).
        jitter: fraction of the delay that is randomised, 0..1.
        max_server_retry: ceiling applied to the server's `retry:` and `Retry-After`.
        floor: the least base a growing backoff starts from (0 lets `retry: 0` spin).
    """

    initial: float = 0.5
    maximum: float = 15.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_server_retry: float = 60.0
    floor: float = 0.1

    def __post_init__(self) -> None:
        for name in ("initial", "maximum", "max_server_retry", "floor"):
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, got {value}")
        if not (1 <= self.multiplier < math.inf):
            raise ValueError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if not (0 <= self.jitter <= 1):
            raise ValueError(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    def bounds(self, attempt: int, server_retry_ms: int | None = None) -> tuple[float, float]:
        """The (lowest, highest) delay in seconds before reconnect number `attempt`.

        `attempt` counts consecutive failures (0 or 1: the base delay, 2: base * multiplier,
        ...); `server_retry_ms` is the last `retry:` the stream sent, in milliseconds.
        """
        if server_retry_ms is None:
            base = self.initial
        else:
            base = min(server_retry_ms / 1000, self.max_server_retry)
        cap = max(self.maximum, base)
        steps = max(attempt - 1, 0)
        if steps == 0:
            return base * (1 - self.jitter), base
        grow = max(base, min(self.floor, cap))  # consecutive failures: never from 0
        if grow == 0 or self.multiplier == 1:
            high = grow
        elif steps * math.log(self.multiplier) >= math.log(cap / grow):
            high = cap  # avoids overflow in multiplier ** steps
        else:
            high = min(cap, grow * self.multiplier**steps)
        return high * (1 - self.jitter), high

    def delay(
        self, attempt: int, server_retry_ms: int | None = None, rand: float | None = None
    ) -> float:
        """A delay within `bounds()`; `rand` in [0, 1) picks it (random when None)."""
        low, high = self.bounds(attempt, server_retry_ms)
        r = random.random() if rand is None else rand
        return low + (high - low) * r
