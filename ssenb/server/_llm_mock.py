"""What the mock model says, shared by every provider-shaped producer.

A `Plan` is the provider-neutral answer: optional reasoning tokens, then either the text
tokens of `mock_answer(prompt)` or, when the request offers tools, one call of the first
tool with arguments built from its JSON schema (streamed in fragments). Each step has its
wait (the first longer: time to first token). Requests may cap the output (the provider's
max-tokens field: the answer stops early with that provider's "length" reason) and, as an
ssenb extension, ask for a mid-stream failure after `fail_after` steps, so clients can see
each provider's documented error event.
"""

from __future__ import annotations

import asyncio
import random
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MOCK_MODEL",
    "Extension",
    "Failed",
    "Plan",
    "Tool",
    "dumps",
    "make_plan",
    "mock_answer",
    "mock_tokens",
    "paced",
    "text_of",
]

MOCK_MODEL = "ssenb-mock"
_TOKEN = re.compile(r" ?\w+| ?[^\w\s]|\s+")
_FRAGMENT = re.compile(r".{1,8}", re.S)
_FIRST_TOKEN_WAIT = 4  # the first token takes this many `delay`s (time to first token)


def mock_answer(prompt: str) -> str:
    """The mock model's deterministic answer to `prompt` (it quotes the prompt verbatim)."""
    return (
        f'Sure! You asked: "{prompt}". Here is a short answer: Server-Sent Events send '
        "text over one long HTTP response, so a model can stream each token as soon as it "
        "is ready, and you read the reply while it is still being written."
    )


def mock_tokens(prompt: str) -> list[str]:
    """`mock_answer(prompt)` cut like model tokens: words (with their leading space) and
    punctuation separately; joined, they give the answer back exactly."""
    return _TOKEN.findall(mock_answer(prompt))


def _waits(
    prompt: str, count: int, delay: float, ttft: float | None = None, jitter: float = 0.4
) -> list[float]:
    """Per-token waits: `delay` with +-`jitter` (a fraction) seeded by the prompt
    (reproducible); the first is `ttft` when given, else 4 such waits."""
    rng = random.Random(zlib.crc32(prompt.encode()))
    waits = [delay * rng.uniform(1 - jitter, 1 + jitter) for _ in range(count)]
    if waits:
        waits[0] = ttft if ttft is not None else waits[0] * _FIRST_TOKEN_WAIT
    return waits


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def mock_reasoning(prompt: str) -> list[str]:
    """The mock's 'thinking' before it answers, as tokens."""
    return _TOKEN.findall(f"The user asks: {prompt!r}. A short, plain answer will do.")


class Extension(BaseModel):
    """ssenb's own request fields, accepted beside each provider's documented ones."""

    model_config = ConfigDict(extra="allow")
    delay: float = Field(0.05, ge=0, le=10, description="ssenb extension: seconds per token")
    ttft: float | None = Field(
        None,
        ge=0,
        le=60,
        description="ssenb extension: seconds to the first token (default 4 token waits)",
    )
    jitter: float = Field(
        0.4,
        ge=0,
        le=1,
        description="ssenb extension: +- fraction of `delay` per token "
        "(0: exactly `delay`, for latency measurements)",
    )
    fail_after: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="ssenb extension: fail mid-stream, with the provider's documented error "
        "event, after this many tokens",
    )


@dataclass(frozen=True)
class Tool:
    """A tool offered by the request: its name and JSON schema for the arguments."""

    name: str
    schema: Mapping[str, Any] = field(default_factory=dict)


def _arguments(tool: Tool, prompt: str) -> str:
    props = tool.schema.get("properties")
    props = props if isinstance(props, dict) else {}
    wanted = tool.schema.get("required") or list(props)
    args: dict[str, Any] = {}
    for name in wanted:
        kind = str((props.get(name) or {}).get("type", "string")).lower()
        args[name] = {
            "integer": len(prompt),
            "number": float(len(prompt)),
            "boolean": True,
            "array": [prompt],
            "object": {},
        }.get(kind, prompt)
    return dumps(args)


@dataclass(frozen=True)
class Plan:
    """One mock answer: `steps` as (kind, piece) with kind reasoning, text or tool."""

    prompt: str
    steps: list[tuple[str, str]]
    waits: list[float]
    tool: Tool | None
    arguments: str
    truncated: bool
    fail_after: int | None

    @property
    def input_tokens(self) -> int:
        return len(_TOKEN.findall(self.prompt))

    @property
    def output_tokens(self) -> int:
        return len(self.steps)

    def pieces(self, kind: str) -> str:
        return "".join(piece for k, piece in self.steps if k == kind)


def make_plan(
    prompt: str,
    *,
    delay: float = 0.05,
    tools: list[Tool] | None = None,
    think: bool = False,
    max_tokens: int | None = None,
    fail_after: int | None = None,
    ttft: float | None = None,
    jitter: float = 0.4,
) -> Plan:
    """The answer to `prompt`; `tools` (first one called), `think` (reasoning first);
    `delay`, `ttft` and `jitter` pace it (see `Extension`)."""
    steps = [("reasoning", t) for t in mock_reasoning(prompt)] if think else []
    tool = tools[0] if tools else None
    arguments = _arguments(tool, prompt) if tool else ""
    if tool:
        steps += [("tool", f) for f in _FRAGMENT.findall(arguments)]
    else:
        steps += [("text", t) for t in mock_tokens(prompt)]
    truncated = max_tokens is not None and len(steps) > max_tokens
    if truncated:
        steps = steps[:max_tokens]
    return Plan(
        prompt,
        steps,
        _waits(prompt, len(steps), delay, ttft, jitter),
        tool,
        arguments,
        truncated,
        fail_after,
    )


class Failed(Exception):
    """Raised by `paced` where the plan says to fail; producers send their error event."""


async def paced(plan: Plan) -> AsyncIterator[tuple[str, str]]:
    """The plan's steps, each after its wait; raises `Failed` after `fail_after` steps."""
    for n, (step, wait) in enumerate(zip(plan.steps, plan.waits, strict=True)):
        if plan.fail_after is not None and n >= plan.fail_after:
            raise Failed
        await asyncio.sleep(wait)
        yield step


def text_of(content: Any, key: str = "text") -> str:
    """The text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get(key, "")) for p in content if isinstance(p, dict))
    return ""
