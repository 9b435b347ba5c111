"""The progress view (a job's progress events drive a bar) and the rate view (events/s plot).

Progress events look like `{"progress": 0..100, "status": "running", "message": ...}` (event
type `progress`), followed by a `complete` or an `error` event; the bar turns green or red.
The rate view counts events into fixed time buckets and draws the last ones as a small inline
SVG line, so it needs no plotting library and survives in the saved notebook as plain HTML.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from typing import Any

from .._models import Event
from ._view_base import FINAL, View, esc, fmt_count, fmt_rate, shorten

__all__ = ["ProgressView", "RateView"]

_STYLE = {"completed": "success", "failed": "danger"}


class ProgressView(View):
    """A progress bar and a status line driven by progress events."""

    kind = "progress"
    interval = 0.05

    def __init__(self, *, title: str = "") -> None:
        super().__init__(title=title)
        self.percent = 0.0
        self.state = "pending"
        self.message = ""

    def _add(self, events: Sequence[Event], now: float) -> None:
        for ev in events:
            if ev.data == "[DONE]":
                continue
            try:
                value: Any = json.loads(ev.data)
            except ValueError:
                value = {"message": ev.data}
            if not isinstance(value, dict):
                value = {"message": json.dumps(value)}
            progress = value.get("progress")
            if isinstance(progress, int | float) and not isinstance(progress, bool):
                self.percent = min(max(float(progress), 0.0), 100.0)
            state = value.get("status")
            if isinstance(state, str) and state:
                self.state = state
            elif ev.event == "progress" or progress is not None:
                self.state = "running"
            message = value.get("message", value.get("error"))
            if message is not None:
                self.message = message if isinstance(message, str) else json.dumps(message)
            if ev.event in ("complete", "completed", "done") or self.state == "completed":
                self.state, self.percent = "completed", 100.0
            elif ev.event in ("error", "failed") or self.state in ("failed", "error"):
                self.state = "failed"

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        """A stream that fails before `complete` marks the job failed, not just stopped."""
        super().on_status(status, error)
        if status == "error" and self.state != "completed":
            self.state = "failed"

    def progress(self) -> tuple[int, str]:
        """Percent (0..100) and the bar style: info while running, success, or danger."""
        return round(self.percent), _STYLE.get(self.state, "info")

    def _summary(self, now: float) -> str:
        return f"{self.state} {self.percent:.0f}%"

    def _bar_html(self) -> str:
        colour = {"success": "#2e7d32", "danger": "#c62828"}.get(self.progress()[1], "#1565c0")
        return (
            '<div style="width:100%;max-width:480px;height:10px;background:#eee;'
            'border-radius:3px;margin:4px 0">'
            f'<div style="width:{self.percent:.1f}%;height:10px;background:{colour};'
            'border-radius:3px"></div></div>'
        )

    def _body_html(self, now: float) -> str:
        message = esc(shorten(self.message, 300)) if self.message else ""
        return f'<div style="font-family:monospace">{message}</div>'


class RateView(View):
    """Events per second now, in total, and a small live line of the recent rate.

    Args:
        bucket: seconds per plotted point.
        points: how many recent points the line shows.
    """

    kind = "rate"
    interval = 0.25

    def __init__(self, *, bucket: float = 0.5, points: int = 60, title: str = "") -> None:
        super().__init__(title=title)
        if bucket <= 0 or points < 2:
            raise ValueError("bucket must be > 0 and points >= 2")
        self.bucket = bucket
        self.buckets: deque[tuple[int, int]] = deque(maxlen=points + 1)  # (index, count)
        self.last_value: Any = None

    def _index(self, now: float) -> int:
        return int((now - self.started) // self.bucket)

    def _add(self, events: Sequence[Event], now: float) -> None:
        index = self._index(now)
        if self.buckets and self.buckets[-1][0] == index:
            self.buckets[-1] = (index, self.buckets[-1][1] + len(events))
        else:
            self.buckets.append((index, len(events)))
        self.last_value = events[-1].data

    def series(self, now: float) -> list[float]:
        """Events/s per completed bucket, oldest first, gaps filled with 0, up to `now`."""
        end = self._index(now)  # the bucket in progress is not complete: leave it out
        counts = dict(self.buckets)
        start = max(end - (self.buckets.maxlen or 2) + 1, 0)
        return [counts.get(i, 0) / self.bucket for i in range(start, end)]

    def rate(self, now: float) -> float:
        """Events/s over the last completed bucket (0 before one completed)."""
        values = self.series(now)
        return values[-1] if values else 0.0

    def _summary(self, now: float) -> str:
        if self.status in FINAL and self.first_at is not None and self.last_at is not None:
            span = max(self.last_at - self.started, 1e-9)
            return f"average {fmt_rate(self.count / span)}"
        return f"now {fmt_rate(self.rate(now))}"

    def _body_html(self, now: float) -> str:
        values = self.series(now)
        width, height = 240, 40
        top = max(values, default=0.0) or 1.0
        step = width / max(len(values) - 1, 1)
        points = " ".join(
            f"{i * step:.1f},{height - (v / top) * (height - 2) - 1:.1f}"
            for i, v in enumerate(values)
        )
        svg = (
            f'<svg width="{width}" height="{height}" role="img" aria-label="events per second"'
            ' style="background:#fafafa;border:1px solid #ddd">'
            f'<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="{points}"/></svg>'
        )
        last = "" if self.last_value is None else shorten(str(self.last_value), 120)
        caption = f"peak {fmt_rate(top if values else 0)} · total {fmt_count(self.count)}"
        return (
            f'<div style="font-family:monospace">{svg}<div>{esc(caption)}</div>'
            f"<div>last: {esc(last)}</div></div>"
        )
