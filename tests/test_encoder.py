"""encode() and encode_comment(): exact wire bytes, and fields that would break framing refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssenb import Event, EventParser, SSEEncodeError, encode, encode_comment

WIRE = [
    ("plain-data", Event(data="hi"), b"data: hi\n\n"),
    ("empty-data", Event(), b"data: \n\n"),
    ("multi-line-lf", Event(data="a\nb"), b"data: a\ndata: b\n\n"),
    ("multi-line-crlf", Event(data="a\r\nb"), b"data: a\ndata: b\n\n"),
    ("multi-line-cr", Event(data="a\rb"), b"data: a\ndata: b\n\n"),
    ("trailing-newline", Event(data="a\n"), b"data: a\ndata: \n\n"),
    ("leading-space-kept", Event(data=" x"), b"data:  x\n\n"),
    ("unicode-separator-not-split", Event(data="a\u2028b"), "data: a\u2028b\n\n".encode()),
    ("event-type", Event(event="add", data="1"), b"event: add\ndata: 1\n\n"),
    ("message-type-omitted", Event(event="message", data="1"), b"data: 1\n\n"),
    ("id", Event(data="1", id="7"), b"id: 7\ndata: 1\n\n"),
    ("retry", Event(data="1", retry=250), b"retry: 250\ndata: 1\n\n"),
    (
        "all-fields",
        Event(event="tick", data="a\nb", id="9", retry=0),
        b"event: tick\nid: 9\nretry: 0\ndata: a\ndata: b\n\n",
    ),
]


@pytest.mark.parametrize(("event", "wire"), [w[1:] for w in WIRE], ids=[w[0] for w in WIRE])
def test_wire_format(event: Event, wire: bytes) -> None:
    assert encode(event) == wire


REFUSED = [
    ("lf-in-event", Event(event="a\ndata: injected", data="x")),
    ("cr-in-event", Event(event="a\rb", data="x")),
    ("lf-in-id", Event(id="1\ndata: injected", data="x")),
    ("crlf-in-id", Event(id="1\r\n", data="x")),
    ("nul-in-id", Event(id="1\x002", data="x")),
    ("negative-retry", Event(data="x", retry=-1)),
    ("float-retry", Event(data="x", retry=1.5)),  # type: ignore[arg-type]
    ("bool-retry", Event(data="x", retry=True)),
    ("str-retry", Event(data="x", retry="10")),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("event", [r[1] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_fields_that_would_corrupt_the_stream_are_refused_not_stripped(event: Event) -> None:
    with pytest.raises(SSEEncodeError):
        encode(event)


@pytest.mark.parametrize(
    "event",
    [Event(event="\n" + "e" * 10**6), Event(id="\0" + "i" * 10**6), Event(retry="7" * 1000001)],  # type: ignore[arg-type]
    ids=["event", "id", "retry"],
)
def test_a_huge_refused_field_is_shortened_in_the_message(event: Event) -> None:
    with pytest.raises(SSEEncodeError, match=r"\.\.\. \(1000001 characters\)") as info:
        encode(event)
    assert len(str(info.value)) < 200


def test_encode_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="newline"):
        encode(Event(event="a\nb"))


COMMENTS = [
    ("heartbeat", "ping", b": ping\n"),
    ("empty", "", b":\n"),
    ("multi-line", "a\nb\r\nc", b": a\n: b\n: c\n"),
]


@pytest.mark.parametrize(("text", "wire"), [c[1:] for c in COMMENTS], ids=[c[0] for c in COMMENTS])
def test_comment_wire_format(text: str, wire: bytes) -> None:
    assert encode_comment(text) == wire


def test_comments_between_events_dispatch_nothing() -> None:
    blob = (
        encode(Event(data="a", id="1"))
        + encode_comment("keepalive\nstill here")
        + encode(Event(data="b"))
    )
    assert EventParser().feed(blob) == [Event(data="a", id="1"), Event(data="b", id="1")]


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text())
def test_property_encode_never_emits_an_injected_field(event: str, data: str, eid: str) -> None:
    """Whatever the strings, the bytes either parse back to exactly one event or are refused."""
    try:
        blob = encode(Event(event=event or "message", data=data, id=eid))
    except SSEEncodeError:
        assert any(c in event for c in "\r\n") or any(c in eid for c in "\r\n\x00")
        return
    parsed = EventParser().feed(blob)
    assert len(parsed) == 1
    assert parsed[0].event == (event or "message")
    assert parsed[0].id == eid
