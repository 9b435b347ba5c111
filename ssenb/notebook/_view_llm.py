"""The LLM token view: the answer assembled live, for every provider's stream shape.

The shapes themselves are known in one place, `ssenb._dialects` (OpenAI Chat Completions
and Responses, Anthropic Messages, Gemini, ssenb's `/chat`); this view feeds each event to
its `Accumulator` and shows the deltas: the text as it grows, reasoning apart (a collapsed
`<details>`), tool calls as their arguments assemble, time to first token, tokens/s, the
finish reason, and provider errors (an Anthropic `overloaded_error` mid-stream, say) as
errors. A stream whose shape it cannot recognise falls back to the event log, with a
one-line note saying so. Everything from the stream is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .._dialects import Accumulator, detect
from .._models import Event
from ._view_base import View, esc, shorten
from ._view_log import LogView

__all__ = ["TokenView", "matches", "token_of"]

_PRE = (
    'style="font-family:system-ui,sans-serif;font-size:13px;white-space:pre-wrap;'
    'margin:4px 0;padding:6px;border-left:3px solid {colour};max-height:30em;overflow:auto"'
)
_CONTENT = frozenset({"text", "reasoning", "tool_args"})
_UNRECOGNISED_LIMIT = 3  # unrecognised events, with no dialect seen, before the log fallback
_LLM_PATHS = ("/chat", "/chat/completions", "/responses", "/messages")
FALLBACK_NOTE = (
    "tokens view: no LLM stream shape recognised (OpenAI, Anthropic, Gemini, ssenb), "
    "showing the event log"
)


def matches(url: str, events: Sequence[Event]) -> bool:
    """True when the URL is an LLM streaming endpoint or the events have an LLM shape
    (for `view="auto"`)."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith(_LLM_PATHS) or ":streamGenerateContent" in path:
        return True
    return bool(events) and detect(events) is not None


def token_of(value: Any) -> tuple[str | None, str | None]:
    """`(text, finish_reason)` of one parsed chat payload (kept for older callers)."""
    acc = Accumulator()
    deltas = acc.feed(Event(data=json.dumps(value))) if isinstance(value, dict) else []
    text = "".join(d.text for d in deltas if d.kind == "text") or None
    finish = next((d.text for d in deltas if d.kind == "finish"), None)
    return (value, None) if isinstance(value, str) else (text, finish)


class TokenView(View):
    """Shows the streamed answer as it grows, plus ttft, token count, tokens/s, finish reason.

    Args:
        max_chars: characters of the answer kept on screen (the tail); the full answer stays
            in `.answer`.
        provider: the dialect, to skip detection (see `ssenb.llm.PROVIDERS`).
    """

    kind = "tokens"
    interval = 0.05

    def __init__(
        self, *, max_chars: int = 20_000, title: str = "", provider: str | None = None
    ) -> None:
        super().__init__(title=title)
        self.max_chars = max_chars
        self.acc = Accumulator(provider)
        self.tokens = 0
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.problems: list[str] = []  # error deltas, newest last (the last 5 are kept)
        self.fallback: LogView | None = None
        self._early: list[Event] = []  # events before a dialect showed (for the fallback)

    @property
    def answer(self) -> str:
        """The text assembled so far."""
        return self.acc.result().text

    @property
    def finish_reason(self) -> str | None:
        return self.acc.result().finish_reason

    @property
    def problem(self) -> str | None:
        """The latest error shown (provider error or unreadable event), or None."""
        return self.problems[-1] if self.problems else None

    @property
    def ttft(self) -> float | None:
        """Seconds from the view's start to the first token, or None before it."""
        return None if self.first_token_at is None else self.first_token_at - self.started

    def _add(self, events: Sequence[Event], now: float) -> None:
        if self.fallback is not None:
            self.fallback.on_events(events, now)
            return
        acc = self.acc
        for ev in events:
            for delta in acc.feed(ev):
                if delta.kind in _CONTENT and delta.text:
                    self.tokens += 1
                    self.first_token_at = self.first_token_at or now
                    self.last_token_at = now
                elif delta.kind == "error":
                    self.problems = [*self.problems[-4:], delta.text]
            if acc.provider is None and len(self._early) < 200:
                self._early.append(ev)
        if acc.provider is None and acc.unrecognised >= _UNRECOGNISED_LIMIT:
            self.fallback = LogView(title=self.title)
            self.fallback.started = self.started
            self.fallback.on_events(self._early, now)
        if acc.provider is not None:
            self._early = []

    def on_status(self, status: str, error: BaseException | None = None) -> None:
        """As the base; a stream that ended cleanly after the provider's own error event
        (an `overloaded_error` mid-answer, say) shows as an error, not as done."""
        if status == "done" and self.fallback is None and self.acc.error is not None:
            status = "error"
        super().on_status(status, error)

    def text(self, now: float | None = None) -> str:
        line = super().text(now)
        return f"{line} | {shorten(self.problem, 200)}" if self.problem else line

    def tokens_per_second(self) -> float | None:
        """Tokens after the first divided by the time since it; None until there are two."""
        if self.first_token_at is None or self.last_token_at is None or self.tokens < 2:
            return None
        span = self.last_token_at - self.first_token_at
        return (self.tokens - 1) / span if span > 0 else None

    def _summary(self, now: float) -> str:
        if self.fallback is not None:
            return self.fallback._summary(now)
        result = self.acc.result()
        words = [f"{self.tokens} tokens"]
        if self.ttft is not None:
            words.append(f"first token {self.ttft * 1000:.0f} ms")
        rate = self.tokens_per_second()
        if rate is not None:
            words.append(f"{rate:.1f} tokens/s")
        if result.finish_reason:
            words.append(f"finish: {shorten(result.finish_reason, 40)}")
        if "output_tokens" in result.usage:
            words.append(
                f"usage: {result.usage.get('input_tokens', '?')} in, "
                f"{result.usage['output_tokens']} out"
            )
        if result.provider:
            words.append(result.provider)
        return ", ".join(words)

    def _tail(self, text: str) -> str:
        return text if len(text) <= self.max_chars else "…" + text[-self.max_chars :]

    def _body_html(self, now: float) -> str:
        if self.fallback is not None:
            note = f'<div style="color:#757575;font-size:12px">{esc(FALLBACK_NOTE)}</div>'
            return note + self.fallback._body_html(now)
        r = self.acc.result()
        parts = []
        if r.reasoning:
            style = _PRE.format(colour="#9e9e9e")
            parts.append(
                f"<details><summary>reasoning ({len(r.reasoning):,} chars)</summary>"
                f"<pre {style}>{esc(self._tail(r.reasoning))}</pre></details>"
            )
        choices = r.provider in ("openai-chat", "gemini")
        others = sorted(r.texts)[1:] if choices else []  # alternative answers, shown apart
        if r.text or not r.tool_calls:
            parts.append(f"<pre {_PRE.format(colour='#1565c0')}>{esc(self._tail(r.text))}</pre>")
        for i in others:
            label = f'<div style="font-size:12px;color:#757575">choice {i}</div>'
            parts.append(
                f"{label}<pre {_PRE.format(colour='#90caf9')}>{esc(self._tail(r.texts[i]))}</pre>"
            )
        for call in r.tool_calls:
            parts.append(
                '<div style="font-family:monospace;font-size:12px;margin:2px 0">'
                f"tool call <b>{esc(call['name'] or '?')}</b>"
                f"({esc(shorten(call['arguments'], 2000))})</div>"
            )
        for problem in self.problems:
            parts.append(f'<div style="color:#c62828">{esc(shorten(problem, 500))}</div>')
        return "".join(parts)
