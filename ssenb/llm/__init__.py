"""`ssenb.llm`: LLM answers streamed by OpenAI (Chat Completions and Responses), Anthropic,
Gemini or ssenb's mock, read the same way.

- `summarize(events_or_df)` -> `LLMResult` (provider, text, reasoning, tool_calls,
  finish_reason, usage, error);
- `frame(events_or_df)` -> DataFrame, one row per delta (time, kind, text, index);
- `metrics(frame)` -> dict (ttft, itl_p50, itl_p99, tokens_per_s, ...);
- `load(url, concurrency=(1, 4, 16))` -> DataFrame: an endpoint's TTFT, ITL and tokens/s
  under concurrent streams, live, one row per request (a summary per level in `.attrs`);
  `background=True` gives a `LoadRun` to `await` instead.

The stream shapes themselves live in one pure module (`ssenb._dialects`), which the tokens
view and the demo relay use too.
"""

from __future__ import annotations

from .._dialects import KINDS, PROVIDERS, Accumulator, Delta, LLMResult, detect
from ._frame import events_of, frame, metrics, summarize
from ._load_run import LoadRun, load

__all__ = [
    "KINDS",
    "PROVIDERS",
    "Accumulator",
    "Delta",
    "LLMResult",
    "LoadRun",
    "detect",
    "events_of",
    "frame",
    "load",
    "metrics",
    "summarize",
]
