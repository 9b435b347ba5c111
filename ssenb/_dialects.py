"""The one place that knows LLM stream shapes (stdlib only, no I/O).

Five dialects, each as its provider documents it:

- `openai-chat`: Chat Completions chunks, `choices[].delta` (content, reasoning_content,
  tool_calls fragments by `index`), `finish_reason`, a final `usage` chunk, then `[DONE]`;
- `openai-responses`: typed events (`event: response.output_text.delta` ...), no `[DONE]`;
  `response.completed` / `incomplete` / `failed` carry status and usage, `error` an error;
- `anthropic`: `message_start`, `content_block_start|delta|stop` (text_delta, thinking_delta,
  input_json_delta), `message_delta` (stop_reason, usage), `message_stop`, `ping`, `error`;
- `gemini`: `streamGenerateContent?alt=sse` chunks, `candidates[].content.parts[]` (text,
  `thought` parts, whole `functionCall`s), `finishReason`, `usageMetadata`, `{"error"}`;
- `ssenb`: the mock `/chat`, `{"content": ...}` per token, then `[DONE]`.

`Accumulator.feed(event)` turns one event into `Delta`s (kind text, reasoning, tool_args,
usage, finish or error; `index` keeps choices, content blocks and tool calls apart), so a view
can update live; `.result()` is the answer so far as an `LLMResult`. The dialect is detected
from the first event that shows it, or given. Malformed JSON in one event is an error delta
for that event and never stops the stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ._models import Event

__all__ = ["KINDS", "PROVIDERS", "Accumulator", "Delta", "LLMResult", "detect", "summarize"]

PROVIDERS = ("openai-chat", "openai-responses", "anthropic", "gemini", "ssenb")
KINDS = ("text", "reasoning", "tool_args", "usage", "finish", "error")
# dialects whose `index` numbers alternative answers (the first is *the* answer); in the
# others it numbers the parts (content blocks, output items) of one answer, joined in order
_CHOICES = frozenset({"openai-chat", "gemini", "ssenb"})
_ANTHROPIC = frozenset(
    {"message_start", "message_delta", "message_stop", "content_block_start",
     "content_block_delta", "content_block_stop", "ping"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of an answer: `kind` in KINDS, its `text`, the choice/block/tool `index`;
    tool_args deltas carry the call's `id` and `name` when the stream first gives them."""

    kind: str
    text: str = ""
    index: int = 0
    id: str | None = None
    name: str | None = None


@dataclass
class LLMResult:
    """A streamed answer, assembled. `usage` holds input_tokens/output_tokens as reported;
    `error` is the provider's error object (None without one); `problems` lists events that
    could not be read (malformed JSON); `texts` is the text of every choice or block."""

    provider: str | None = None
    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    error: Any = None
    texts: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _detect(name: str, value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if name in _ANTHROPIC or kind in _ANTHROPIC:
        return "anthropic"
    if name.startswith("response.") or (isinstance(kind, str) and kind.startswith("response.")):
        return "openai-responses"
    if not isinstance(value, dict):
        return None
    if "choices" in value or value.get("object") == "chat.completion.chunk":
        return "openai-chat"
    if {"candidates", "usageMetadata", "promptFeedback"} & set(value):
        return "gemini"
    if isinstance(value.get("content"), str) and set(value) <= {"content", "finish_reason", "role"}:
        return "ssenb"
    return None


def detect(events: Iterable[Event]) -> str | None:
    """The dialect of the first event that shows one (None if none does)."""
    for ev in events:
        try:
            found = _detect(ev.event, json.loads(ev.data))
        except ValueError:
            found = _detect(ev.event, None)
        if found:
            return found
    return None


def usage_of(raw: Any) -> dict[str, int]:
    """Token counts under one naming: input_tokens and output_tokens (and total_tokens)."""
    u = _dict(raw)
    names = {
        "input_tokens": ("input_tokens", "prompt_tokens", "promptTokenCount"),
        "output_tokens": ("output_tokens", "completion_tokens", "candidatesTokenCount"),
        "total_tokens": ("total_tokens", "totalTokenCount"),
    }
    out: dict[str, int] = {}
    for key, aliases in names.items():
        for alias in aliases:
            if isinstance(u.get(alias), int):
                out[key] = u[alias]
                break
    return out


def _usage(acc: Accumulator, raw: Any) -> list[Delta]:
    """A usage delta when the counts changed (Gemini repeats them in every chunk)."""
    found = usage_of(raw) if raw else None
    if not found or all(acc.usage.get(k) == v for k, v in found.items()):
        return []
    acc.usage.update(found)
    return [Delta("usage", json.dumps(found, sort_keys=True))]


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        message = err.get("message")
        kind = err.get("type") or err.get("status") or err.get("code") or err.get("error")
        if isinstance(kind, str) and kind and isinstance(message, str):
            return f"{kind}: {message}"
        if isinstance(message, str):
            return message
        inner = err.get("error")
        if isinstance(inner, str):
            return inner
    return err if isinstance(err, str) else json.dumps(err, sort_keys=True)


def _openai_chat(acc: Accumulator, value: Any) -> list[Delta]:
    out: list[Delta] = []
    for choice in value.get("choices") or ():
        choice = _dict(choice)
        i = _int(choice.get("index"))
        delta = _dict(choice.get("delta") or choice.get("message"))
        for key in ("reasoning_content", "reasoning"):  # DeepSeek, vLLM, OpenRouter
            if reasoning := _str(delta.get(key)):
                out.append(Delta("reasoning", reasoning, i))
        if text := _str(delta.get("content")) or _str(choice.get("text")):
            out.append(Delta("text", text, i))
        if text := _str(delta.get("refusal")):  # a refusal is the answer's text
            out.append(Delta("text", text, i))
        for call in delta.get("tool_calls") or ():
            call, fn = _dict(call), _dict(_dict(call).get("function"))
            args = _str(fn.get("arguments")) or ""
            out.append(Delta("tool_args", args, _int(call.get("index")),
                             _str(call.get("id")), _str(fn.get("name"))))  # fmt: skip
        if finish := _str(choice.get("finish_reason")):
            out.append(Delta("finish", finish, i))
    return out + _usage(acc, value.get("usage"))


def _openai_responses(acc: Accumulator, value: Any) -> list[Delta]:
    kind = value.get("type")
    i = _int(value.get("output_index"))
    delta = _str(value.get("delta")) or ""
    if kind in ("response.output_text.delta", "response.refusal.delta"):
        return [Delta("text", delta, i)] if delta else []
    if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        return [Delta("reasoning", delta, i)] if delta else []
    if kind == "response.function_call_arguments.delta":
        return [Delta("tool_args", delta, i)]
    if kind == "response.function_call_arguments.done" and i in acc.tools:
        acc.tools[i]["arguments"] = _str(value.get("arguments")) or acc.tools[i]["arguments"]
    if kind == "response.output_item.added":
        item = _dict(value.get("item"))
        if item.get("type") == "function_call":
            args = _str(item.get("arguments")) or ""
            return [Delta("tool_args", args, i, _str(item.get("call_id")), _str(item.get("name")))]
    if kind in ("response.completed", "response.incomplete", "response.failed"):
        response = _dict(value.get("response"))
        out = _usage(acc, response.get("usage"))
        if response.get("error"):
            out.append(_error(acc, response["error"]))
        reason = _str(_dict(response.get("incomplete_details")).get("reason"))
        finish = reason or _str(response.get("status")) or kind.rsplit(".", 1)[1]
        return [*out, Delta("finish", finish)]
    return []


def _anthropic(acc: Accumulator, value: Any) -> list[Delta]:
    kind = value.get("type")
    i = _int(value.get("index"))
    if kind == "message_start":
        return _usage(acc, _dict(value.get("message")).get("usage"))
    if kind == "content_block_start":
        block = _dict(value.get("content_block"))
        if block.get("type") in ("tool_use", "server_tool_use"):
            return [Delta("tool_args", "", i, _str(block.get("id")), _str(block.get("name")))]
        if text := _str(block.get("text")):
            return [Delta("text", text, i)]
        if thinking := _str(block.get("thinking")):
            return [Delta("reasoning", thinking, i)]
    if kind == "content_block_delta":
        delta = _dict(value.get("delta"))
        step = delta.get("type")
        if step == "text_delta" and (text := _str(delta.get("text"))):
            return [Delta("text", text, i)]
        if step == "thinking_delta" and (thinking := _str(delta.get("thinking"))):
            return [Delta("reasoning", thinking, i)]
        if step == "input_json_delta":
            return [Delta("tool_args", _str(delta.get("partial_json")) or "", i)]
    if kind == "message_delta":
        out = _usage(acc, value.get("usage"))
        if reason := _str(_dict(value.get("delta")).get("stop_reason")):
            out.append(Delta("finish", reason))
        return out
    if kind == "message_stop":
        acc.done = True
    return []


def _gemini(acc: Accumulator, value: Any) -> list[Delta]:
    out: list[Delta] = []
    for cand in value.get("candidates") or ():
        cand = _dict(cand)
        i = _int(cand.get("index"))
        for part in _dict(cand.get("content")).get("parts") or ():
            part = _dict(part)
            if text := _str(part.get("text")):
                out.append(Delta("reasoning" if part.get("thought") else "text", text, i))
            if "functionCall" in part:  # the Gemini API sends each call whole
                call = _dict(part["functionCall"])
                args = json.dumps(_dict(call.get("args")))
                slot = len(acc.tools) + sum(d.kind == "tool_args" for d in out)
                out.append(Delta("tool_args", args, slot, _str(call.get("id")),
                                 _str(call.get("name"))))  # fmt: skip
        if finish := _str(cand.get("finishReason")):
            out.append(Delta("finish", finish, i))
    if blocked := _str(_dict(value.get("promptFeedback")).get("blockReason")):
        out.append(Delta("finish", blocked))
    return out + _usage(acc, value.get("usageMetadata"))


def _ssenb(acc: Accumulator, value: Any) -> list[Delta]:
    out = [Delta("text", value["content"])] if _str(value.get("content")) else []
    if finish := _str(value.get("finish_reason")):
        out.append(Delta("finish", finish))
    return out


_HANDLERS: dict[str, Callable[[Accumulator, Any], list[Delta]]] = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "ssenb": _ssenb,
}


def _error_object(value: Any) -> Any:
    """The provider's error object: Anthropic's, Gemini's and OpenAI's `{"error": {...}}`,
    a Responses `error` event without its envelope, else the whole payload."""
    if isinstance(value, dict):
        if isinstance(value.get("error"), dict):
            return value["error"]
        return {k: v for k, v in value.items() if (k, v) != ("type", "error")
                and k != "sequence_number"}  # fmt: skip
    return value


def _error(acc: Accumulator, err: Any) -> Delta:
    acc.error = err
    return Delta("error", _error_text(err))


class Accumulator:
    """Feed events one at a time; get each event's deltas, and the answer so far.

    Args:
        provider: one of PROVIDERS to skip detection, or None to detect it from the events.
    """

    def __init__(self, provider: str | None = None) -> None:
        if provider is not None and provider not in _HANDLERS:
            raise ValueError(f"unknown provider {provider!r}: use one of {', '.join(PROVIDERS)}")
        self.provider = provider
        self.texts: dict[int, list[str]] = {}
        self.reasoning: dict[int, list[str]] = {}
        self.tools: dict[int, dict[str, str]] = {}
        self.finishes: dict[int, str] = {}  # by choice (the block dialects finish at 0)
        self.usage: dict[str, int] = {}
        self.error: Any = None
        self.problems: list[str] = []
        self.unrecognised = 0  # events seen before any dialect showed (not errors, not [DONE])
        self.done = False

    def feed(self, event: Event) -> list[Delta]:
        """The deltas `event` carries (often none: pings, lifecycle events, `[DONE]`)."""
        data = event.data
        if data == "[DONE]":
            self.done = True
            return []
        try:
            value: Any = json.loads(data) if data else None
        except ValueError:
            if event.event == "error":
                return [self._apply(_error(self, data))]
            if self.provider is None:
                self.unrecognised += 1
                return []
            return [self._apply(self._problem(event))]
        if self.provider is None:
            self.provider = _detect(event.event, value)
        if event.event == "error" or (isinstance(value, dict) and value.get("error")):
            return [self._apply(_error(self, _error_object(value)))]
        if not isinstance(value, dict) or self.provider is None:
            if self.provider is None and value is not None:
                self.unrecognised += 1
            return []
        deltas = _HANDLERS[self.provider](self, value)
        for delta in deltas:
            self._apply(delta)
        return deltas

    def _problem(self, event: Event) -> Delta:
        excerpt = event.data if len(event.data) <= 80 else event.data[:79] + "…"
        note = f"malformed JSON in a {event.event!r} event: {excerpt}"
        self.problems.append(note)
        return Delta("error", note)

    def _apply(self, delta: Delta) -> Delta:
        kind, text, i = delta.kind, delta.text, delta.index
        if kind == "text":
            self.texts.setdefault(i, []).append(text)
        elif kind == "reasoning":
            self.reasoning.setdefault(i, []).append(text)
        elif kind == "tool_args":
            call = self.tools.setdefault(i, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or delta.id or ""
            call["name"] = call["name"] or delta.name or ""
            call["arguments"] += text
        elif kind == "finish":
            self.finishes[i] = text
        return delta

    def result(self) -> LLMResult:
        """The answer assembled from everything fed so far."""
        texts = {i: "".join(parts) for i, parts in sorted(self.texts.items())}
        finish = self.finishes.get(min(self.finishes)) if self.finishes else None
        if self.provider in _CHOICES or self.provider is None:
            text = texts[min(texts)] if texts else ""
        else:
            text = "".join(texts.values())
        reasoning = "".join("".join(p) for _, p in sorted(self.reasoning.items()))
        return LLMResult(
            provider=self.provider,
            text=text,
            reasoning=reasoning,
            tool_calls=[dict(call) for _, call in sorted(self.tools.items())],
            finish_reason=finish,
            usage=dict(self.usage),
            error=self.error,
            texts=texts,
            problems=list(self.problems),
        )


def summarize(events: Iterable[Event], provider: str | None = None) -> LLMResult:
    """Fold a whole stream of events into its `LLMResult`."""
    acc = Accumulator(provider)
    for event in events:
        acc.feed(event)
    return acc.result()
