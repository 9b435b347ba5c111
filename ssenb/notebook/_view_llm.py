"""The LLM token view: the answer assembled live, with time to first token and tokens/s.

It understands both shapes the kit meets:

- ssenb's `/chat` (and the seed's mock): `{"content": "..."}` per token, then `[DONE]`;
- OpenAI `chat.completion.chunk` objects: `choices[0].delta.content` and `finish_reason`.

Anything else still shows: plain-text data is appended as is, and an `error` event or an
`{"error": ...}` object is shown as the error line (escaped, like everything else).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._models import Event
from ._view_base import View, esc, shorten

__all__ = ["TokenView", "token_of"]

_PRE = (
    'style="font-family:system-ui,sans-serif;font-size:13px;white-space:pre-wrap;'
    'margin:4px 0;padding:6px;border-left:3px solid #1565c0;max-height:30em;overflow:auto"'
)


def token_of(value: Any) -> tuple[str | None, str | None]:
    """`(text, finish_reason)` carried by one parsed event payload; (None, None) if neither."""
    if isinstance(value, dict):
        choices = value.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta") or choice.get("message") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if text is None and isinstance(choice.get("text"), str):
                text = choice["text"]  # legacy completions chunks
            finish = choice.get("finish_reason")
            return (text if isinstance(text, str) else None, finish if finish else None)
        content = value.get("content")
        if isinstance(content, str):
            return content, value.get("finish_reason") or None
        return None, None
    if isinstance(value, str):
        return value, None
    return None, None


class TokenView(View):
    """Shows the streamed answer as it grows, plus ttft, token count, tokens/s, finish reason.

    Args:
        max_chars: characters of the answer kept on screen (the tail); the full answer stays
            in `.answer`.
    """

    kind = "tokens"
    interval = 0.05

    def __init__(self, *, max_chars: int = 20_000, title: str = "") -> None:
        super().__init__(title=title)
        self.max_chars = max_chars
        self.parts: list[str] = []
        self.tokens = 0
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.problem: str | None = None

    @property
    def answer(self) -> str:
        """The text assembled so far."""
        return "".join(self.parts)

    @property
    def ttft(self) -> float | None:
        """Seconds from the view's start to the first token, or None before it."""
        return None if self.first_token_at is None else self.first_token_at - self.started

    def _add(self, events: Sequence[Event], now: float) -> None:
        for ev in events:
            data = ev.data
            if data == "[DONE]":
                continue
            try:
                value: Any = json.loads(data)
            except ValueError:
                value = data
            if ev.event == "error" or (isinstance(value, dict) and "error" in value):
                detail = value.get("error", value) if isinstance(value, dict) else value
                self.problem = detail if isinstance(detail, str) else json.dumps(detail)
                continue
            text, finish = token_of(value)
            if finish:
                self.finish_reason = str(finish)
            if text:
                self.parts.append(text)
                self.tokens += 1
                if self.first_token_at is None:
                    self.first_token_at = now
                self.last_token_at = now

    def tokens_per_second(self) -> float | None:
        """Tokens after the first divided by the time since it; None until there are two."""
        if self.first_token_at is None or self.last_token_at is None or self.tokens < 2:
            return None
        span = self.last_token_at - self.first_token_at
        return (self.tokens - 1) / span if span > 0 else None

    def _summary(self, now: float) -> str:
        words = [f"{self.tokens} tokens"]
        if self.ttft is not None:
            words.append(f"first token {self.ttft * 1000:.0f} ms")
        rate = self.tokens_per_second()
        if rate is not None:
            words.append(f"{rate:.1f} tokens/s")
        if self.finish_reason:
            words.append(f"finish: {shorten(self.finish_reason, 40)}")
        return ", ".join(words)

    def _body_html(self, now: float) -> str:
        text = self.answer
        if len(text) > self.max_chars:
            text = "…" + text[-self.max_chars :]
        body = f"<pre {_PRE}>{esc(text)}</pre>"
        if self.problem:
            body += f'<div style="color:#c62828">{esc(shorten(self.problem, 500))}</div>'
        return body
