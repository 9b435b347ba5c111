"""`ssenb.llm`: summarize, frame and metrics over events, (time, Event) pairs and the
DataFrames `collect` returns, against a real demo server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import ssenb
from ssenb import Event, EventParser
from ssenb.server import ServerHandle
from ssenb.server._llm_mock import mock_answer

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
PROMPT = "Hello there"


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-llm-namespace") as handle:
        yield handle


def test_llm_is_a_lazy_public_namespace() -> None:
    assert "llm" in ssenb.__all__
    assert ssenb.llm.summarize is ssenb.llm._frame.summarize
    assert {"summarize", "frame", "metrics", "LLMResult"} <= set(ssenb.llm.__all__)


REQUESTS = {
    "ssenb": ("GET", "/chat", None),
    "openai-chat": ("POST", "/v1/chat/completions",
                    {"messages": [{"role": "user", "content": PROMPT}], "stream": True,
                     "stream_options": {"include_usage": True}}),
    "openai-responses": ("POST", "/v1/responses", {"input": PROMPT, "stream": True}),
    "anthropic": ("POST", "/v1/messages", {"max_tokens": 512, "stream": True,
                  "messages": [{"role": "user", "content": PROMPT}]}),
    "gemini": ("POST", "/v1beta/models/m:streamGenerateContent?alt=sse",
               {"contents": [{"parts": [{"text": PROMPT}]}]}),
}  # fmt: skip


def _collect(demo: ServerHandle, provider: str, delay: float = 0.0) -> pd.DataFrame:
    method, path, body = REQUESTS[provider]
    if body is None:
        return ssenb.collect(f"{demo.url}{path}", params={"prompt": PROMPT, "delay": delay})
    return ssenb.collect(f"{demo.url}{path}", method=method, json={**body, "delay": delay})


@pytest.mark.parametrize("provider", list(REQUESTS))
def test_a_collected_dataframe_summarizes_like_its_events(
    demo: ServerHandle, provider: str
) -> None:
    df = _collect(demo, provider)
    result = ssenb.llm.summarize(df)
    assert (result.provider, result.text) == (provider, mock_answer(PROMPT))
    frame = ssenb.llm.frame(df)
    assert list(frame.columns[:4]) == ["time", "kind", "text", "index"]
    assert "".join(frame.loc[frame["kind"] == "text", "text"]) == mock_answer(PROMPT)
    assert frame["time"].dtype == df["time"].dtype
    assert frame.attrs["provider"] == provider


@pytest.mark.parametrize("provider", list(REQUESTS))
def test_metrics_measure_time_to_first_token_and_rate(demo: ServerHandle, provider: str) -> None:
    delay = 0.01  # the mock waits 4 delays for the first token, ~1 delay for each next one
    start = pd.Timestamp.now(tz="UTC")  # ttft counts from the request
    m = ssenb.llm.metrics(ssenb.llm.frame(_collect(demo, provider, delay)), start=start)
    assert m["tokens"] == len(ssenb.server._llm_mock.mock_tokens(PROMPT))
    assert 0.6 * 4 * delay <= m["ttft"] < 4 * delay + 1.0
    assert 0.5 * delay <= m["itl_p50"] <= 5 * delay
    assert m["itl_p99"] >= m["itl_p50"]
    assert 1 / (5 * delay) < m["tokens_per_s"] < 2 / delay
    assert m["errors"] == 0
    if provider != "ssenb":
        assert m["output_tokens"] == m["tokens"]
        assert m["finish_reason"] in {"stop", "completed", "end_turn", "STOP"}


def test_a_recording_read_back_summarizes_like_the_live_stream(
    demo: ServerHandle, tmp_path: Path
) -> None:
    method, path, body = REQUESTS["anthropic"]
    url = f"{demo.url}{path}"
    count = ssenb.record(url, tmp_path / "answer.jsonl", method=method, json={**body, "delay": 0})
    df = ssenb.read_jsonl(tmp_path / "answer.jsonl")
    assert len(df) == count
    assert ssenb.llm.summarize(df) == ssenb.llm.summarize(_collect(demo, "anthropic"))
    assert ssenb.llm.metrics(ssenb.llm.frame(df))["tokens_per_s"] is not None


def test_plain_events_have_no_times_so_time_figures_are_none() -> None:
    events = EventParser().feed((FIXTURES / "anthropic.txt").read_bytes())
    m = ssenb.llm.metrics(ssenb.llm.frame(events))
    assert (m["tokens"], m["ttft"], m["tokens_per_s"], m["output_tokens"]) == (2, None, None, 15)
    assert m["finish_reason"] == "end_turn"


def test_time_event_pairs_give_exact_metrics() -> None:
    events = EventParser().feed((FIXTURES / "openai_chat.txt").read_bytes())
    pairs = [(0.1 * i, ev) for i, ev in enumerate(events)]  # role chunk at 0, tokens 0.1 apart
    frame = ssenb.llm.frame(pairs)
    m = ssenb.llm.metrics(frame)
    assert m["ttft"] == pytest.approx(0.1)
    assert m["itl_p50"] == pytest.approx(0.1)
    assert m["tokens_per_s"] == pytest.approx(10.0)
    assert m["output_tokens"] == 7
    assert ssenb.llm.metrics(frame, start=-0.4)["ttft"] == pytest.approx(0.5)


def test_frame_rows_point_at_the_event_that_carried_them() -> None:
    events = [Event(data='{"content": "A"}'), Event(data='{"content": "B'),
              Event(data='{"content": "C"}')]  # fmt: skip
    frame = ssenb.llm.frame(events)
    assert list(zip(frame["kind"], frame["event"], strict=True)) == [
        ("text", 0), ("error", 1), ("text", 2)
    ]  # fmt: skip
    assert ssenb.llm.summarize(events).text == "AC"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (pd.DataFrame({"x": [1]}), ValueError),
        (["not an event"], TypeError),
    ],
    ids=["dataframe-without-event-columns", "list-of-strings"],
)
def test_things_that_are_not_streams_are_refused_clearly(source: object, error: type) -> None:
    with pytest.raises(error):
        ssenb.llm.frame(source)  # type: ignore[arg-type]


def test_missing_cells_of_arrow_backed_columns_read_as_empty() -> None:
    df = pd.DataFrame(
        {
            "event": [None, "message"],
            "id": [None, None],
            "data": ['{"content": "A"}', '{"content": "B"}'],
        }
    ).astype("string[pyarrow]")
    assert [ev.event for _, ev in ssenb.llm.events_of(df)] == ["message", "message"]
    assert [ev.id for _, ev in ssenb.llm.events_of(df)] == ["", ""]
    assert ssenb.llm.summarize(df).text == "AB"


def test_an_empty_stream_gives_an_empty_frame_and_empty_metrics() -> None:
    frame = ssenb.llm.frame([])
    assert frame.empty
    assert ssenb.llm.metrics(frame)["tokens"] == 0
    assert ssenb.llm.summarize([]).text == ""
