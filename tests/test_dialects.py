"""`ssenb._dialects`: the five stream shapes, read from byte-exact recordings and from cases.

tests/fixtures/llm/*.txt are streams in each provider's documented wire format (Gemini's
with CRLF line ends, as its API sends them); each is fed to the real parser, then to
`summarize`, and must give the answer the provider meant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssenb import Event, EventParser
from ssenb._dialects import PROVIDERS, Accumulator, Delta, detect, summarize

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
WEATHER_PARIS = '{"location": "Paris, France"}'

# file -> provider, text, reasoning, tool calls (name, arguments), finish, usage, error
EXPECTED: dict[str, tuple[Any, ...]] = {
    "openai_chat.txt": ("openai-chat", "Server-Sent Events stream text.", "", [], "stop",
                        (14, 7), None),
    "openai_chat_tools.txt": ("openai-chat", "", "", [("get_weather", WEATHER_PARIS),
                              ("get_time", '{"tz": "Europe/Paris"}')], "tool_calls", (), None),
    "openai_chat_choices.txt": ("openai-chat", "Yes, indeed", "", [], "stop", (), None),
    "openai_responses.txt": ("openai-responses", "Hi! How can I help?", "**Answering briefly**",
                             [], "completed", (11, 89), None),
    "openai_responses_tools.txt": ("openai-responses", "", "",
                                   [("get_weather", '{"location":"Paris, France"}')],
                                   "completed", (291, 23), None),
    "openai_responses_error.txt": ("openai-responses", "Par", "", [], "failed", (),
                                   "server_error"),
    "anthropic.txt": ("anthropic", "Hello!", "", [], "end_turn", (25, 15), None),
    "anthropic_tools.txt": ("anthropic", "Okay, let's check the weather for San Francisco, CA:",
                            "", [("get_weather", '{"location": "San Francisco, CA", "unit": '
                                 '"fahrenheit"}')], "tool_use", (472, 89), None),
    "anthropic_thinking.txt": ("anthropic", "The greatest common divisor of 1071 and 462 is "
                               "**21**.", "I need to find the GCD of 1071 and 462. 1071 = 2 × "
                               "462 + 147...", [], "end_turn", (50, 120), None),
    "anthropic_overloaded.txt": ("anthropic", "Hel", "", [], None, (25, 1), "overloaded_error"),
    "gemini.txt": ("gemini", "Server-Sent Events let a server push text to the browser over "
                   "HTTP.", "**Defining SSE** I'm explaining one-way streams.", [], "STOP",
                   (9, 14), None),
    "gemini_tools.txt": ("gemini", "", "", [("get_weather", WEATHER_PARIS)], "STOP", (58, 7),
                         None),
    "gemini_error.txt": ("gemini", "Server-Sent", "", [], None, (9,), "UNAVAILABLE"),
    "ssenb_chat.txt": ("ssenb", "Sure! Hi.", "", [], None, (), None),
}  # fmt: skip


def _events(name: str) -> list[Event]:
    return EventParser().feed((FIXTURES / name).read_bytes())


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".txt"))
def test_a_recorded_stream_summarizes_to_its_answer(name: str) -> None:
    provider, text, reasoning, calls, finish, usage, error = EXPECTED[name]
    result = summarize(_events(name))
    assert (result.provider, result.text, result.reasoning) == (provider, text, reasoning)
    assert [(c["name"], c["arguments"]) for c in result.tool_calls] == calls
    assert all(c["id"] for c in result.tool_calls if provider != "gemini")
    assert result.finish_reason == finish
    keys = ("input_tokens", "output_tokens")[: len(usage)]
    assert tuple(result.usage[k] for k in keys) == usage
    assert (error is None) == (result.error is None)
    if error:
        assert error in json.dumps(result.error)
    assert result.problems == []


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".txt"))
def test_detection_agrees_with_the_provider_given(name: str) -> None:
    events = _events(name)
    assert detect(events) == EXPECTED[name][0]
    assert summarize(events, provider=EXPECTED[name][0]) == summarize(events)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".txt"))
def test_a_stream_fed_byte_by_byte_reads_the_same(name: str) -> None:
    parser, events = EventParser(), []
    for byte in (FIXTURES / name).read_bytes():
        events += parser.feed(bytes([byte]))
    assert summarize(events) == summarize(_events(name))


def test_choices_stay_apart_by_index() -> None:
    result = summarize(_events("openai_chat_choices.txt"))
    assert result.texts == {0: "Yes, indeed", 1: "No, never"}
    assert result.text == "Yes, indeed"  # the first choice is the answer
    assert result.finish_reason == "stop"  # ... and its finish reason (choice 1 hit length)


def test_content_blocks_are_joined_in_order_and_tool_fragments_assemble() -> None:
    acc = Accumulator()
    seen = [d for ev in _events("anthropic_tools.txt") for d in acc.feed(ev)]
    fragments = [d.text for d in seen if d.kind == "tool_args"]
    assert "".join(fragments) == acc.result().tool_calls[0]["arguments"]
    assert {d.index for d in seen if d.kind == "text"} == {0}
    assert {d.index for d in seen if d.kind == "tool_args"} == {1}
    first = next(d for d in seen if d.kind == "tool_args")
    assert (first.id, first.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")


def test_the_accumulator_reports_deltas_as_they_come() -> None:
    acc = Accumulator()
    kinds = [[d.kind for d in acc.feed(ev)] for ev in _events("anthropic.txt")]
    # message_start (usage), block start, ping, two text deltas, block stop, delta, stop
    assert kinds == [["usage"], [], [], ["text"], ["text"], [], ["usage", "finish"], []]
    assert acc.done


def msg(data: Any, event: str = "message") -> Event:
    return Event(event=event, data=data if isinstance(data, str) else json.dumps(data))


BAD_INPUT = [
    ("malformed-json-mid-stream",
     [msg({"content": "A"}), msg('{"content": "B'), msg({"content": "C"})], "AC", 1),
    ("plain-error-event", [msg({"content": "A"}), msg("boom", event="error")], "A", 0),
    ("json-list", [msg({"content": "A"}), msg([1, 2])], "A", 0),
    ("empty-data", [msg({"content": "A"}), msg("")], "A", 0),
    ("done-only", [msg("[DONE]")], "", 0),
    ("unknown-shape", [msg({"weather": "sunny"})], "", 0),
]  # fmt: skip


@pytest.mark.parametrize(("events", "text", "problems"), [c[1:] for c in BAD_INPUT],
                         ids=[c[0] for c in BAD_INPUT])  # fmt: skip
def test_bad_input_never_stops_the_stream(events: list[Event], text: str, problems: int) -> None:
    result = summarize(events)
    assert (result.text, len(result.problems)) == (text, problems)


def test_malformed_json_is_an_error_delta_for_that_event_only() -> None:
    acc = Accumulator("anthropic")
    bad = Event(event="content_block_delta", data='{"type": "content_block_delta", "ind')
    (delta,) = acc.feed(bad)
    assert delta.kind == "error"
    assert "malformed JSON" in delta.text
    assert "content_block_delta" in delta.text
    assert acc.error is None  # not the provider's error: the stream goes on
    assert acc.feed(_events("anthropic.txt")[3]) == [Delta("text", "Hello", 0)]


def test_an_unrecognised_stream_is_counted_not_guessed() -> None:
    acc = Accumulator()
    for ev in [msg({"weather": "sunny"}), msg("plain words")]:
        assert acc.feed(ev) == []
    assert (acc.provider, acc.unrecognised) == (None, 2)


def test_an_unknown_provider_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="openai-chat, openai-responses, anthropic, gemini"):
        Accumulator("cohere")
    assert PROVIDERS == ("openai-chat", "openai-responses", "anthropic", "gemini", "ssenb")


PIECE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1)


@given(st.lists(PIECE, max_size=20), st.sampled_from(["openai-chat", "anthropic", "gemini"]))
def test_any_text_round_trips_through_every_dialect(pieces: list[str], provider: str) -> None:
    def wrap(piece: str) -> Event:
        if provider == "openai-chat":
            return msg({"choices": [{"index": 0, "delta": {"content": piece}}]})
        if provider == "anthropic":
            delta = {"type": "text_delta", "text": piece}
            return msg({"type": "content_block_delta", "index": 0, "delta": delta},
                       "content_block_delta")  # fmt: skip
        return msg({"candidates": [{"content": {"parts": [{"text": piece}]}, "index": 0}]})

    assert summarize([wrap(p) for p in pieces]).text == "".join(pieces)


def _chunk(delta: dict[str, Any]) -> Event:
    return msg({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})


FIELDS = [
    ("refusal", [_chunk({"refusal": "I can't help"})], "I can't help", ""),
    ("reasoning_content", [_chunk({"reasoning_content": "hmm"}), _chunk({"content": "42"})],
     "42", "hmm"),
    ("reasoning", [_chunk({"reasoning": "hmm"}), _chunk({"content": "42"})], "42", "hmm"),
    ("gemini-thought", [msg({"candidates": [{"content": {"parts": [
        {"text": "hmm", "thought": True}, {"text": "42"}]}}]})], "42", "hmm"),
]  # fmt: skip


@pytest.mark.parametrize(("events", "text", "reasoning"), [f[1:] for f in FIELDS],
                         ids=[f[0] for f in FIELDS])  # fmt: skip
def test_refusals_are_text_and_reasoning_fields_are_reasoning(
    events: list[Event], text: str, reasoning: str
) -> None:
    result = summarize(events)
    assert (result.text, result.reasoning) == (text, reasoning)
