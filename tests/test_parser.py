"""EventParser against the WHATWG "Server-sent events" parsing and interpretation rules.

Every case is fed three ways: whole, one byte at a time, and split at every offset into two
chunks. The standard's own examples come first.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssenb import Event, EventParser, SSEEventTooLarge, encode

M = "message"
MAX = EventParser.MAX_RETRY_MS
LONG_ID = "é" * 2048  # 4,096 UTF-8 bytes: exactly the default max_id_bytes

# (stream bytes, expected events as (event, data, id, retry))
Row = tuple[str, str, str, int | None]
CASES: list[tuple[str, bytes, list[Row]]] = [
    # --- the standard's own examples ---
    ("spec:stock-ticker", b"data: YHOO\ndata: +2\ndata: 10\n\n", [(M, "YHOO\n+2\n10", "", None)]),
    (
        "spec:four-blocks",
        b": test stream\n\ndata: first event\nid: 1\n\n"
        b"data:second event\nid\n\ndata:  third event\n\n",
        [
            (M, "first event", "1", None),
            (M, "second event", "", None),
            (M, " third event", "", None),
        ],
    ),
    (
        "spec:two-events-empty-data",
        b"data\n\ndata\ndata\n\ndata:",
        [(M, "", "", None), (M, "\n", "", None)],
    ),
    (
        "spec:space-after-colon-optional",
        b"data:test\n\ndata: test\n\n",
        [(M, "test", "", None)] * 2,
    ),
    # --- line ends ---
    ("crlf", b"data: a\r\ndata: b\r\n\r\n", [(M, "a\nb", "", None)]),
    ("cr-only", b"data: a\rdata: b\r\r", [(M, "a\nb", "", None)]),
    ("mixed-line-ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [(M, "a\nb\nc", "", None)]),
    (
        "cr-then-lf-is-one-end",
        b"data: a\r\n\r\ndata: b\n\n",
        [(M, "a", "", None), (M, "b", "", None)],
    ),
    (
        "unicode-separators-kept",
        "data: a\u2028b\u0085c\x1cd\n\n".encode(),
        [(M, "a\u2028b\u0085c\x1cd", "", None)],
    ),
    ("vertical-tab-and-ff-kept", b"data: a\x0bb\x0cc\n\n", [(M, "a\x0bb\x0cc", "", None)]),
    # --- BOM ---
    ("bom-stripped-at-start", b"\xef\xbb\xbfdata: a\n\n", [(M, "a", "", None)]),
    ("only-one-bom-stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n", []),
    ("bom-mid-stream-kept", b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [(M, "a", "", None)]),
    ("bom-inside-value-kept", "data: \ufeffx\n\n".encode(), [(M, "\ufeffx", "", None)]),
    # --- UTF-8 ---
    ("utf8-multibyte", "data: héllo ✓ 😀\n\n".encode(), [(M, "héllo ✓ 😀", "", None)]),
    ("invalid-utf8-replaced", b"data: a\xffb\xc3\n\n", [(M, "a\ufffdb\ufffd", "", None)]),
    ("nul-in-data-kept", b"data: a\x00b\n\n", [(M, "a\x00b", "", None)]),
    # --- fields ---
    ("event-type", b"event: add\ndata: 1\n\n", [("add", "1", "", None)]),
    (
        "event-type-reset-after-dispatch",
        b"event: add\ndata: 1\n\ndata: 2\n\n",
        [("add", "1", "", None), (M, "2", "", None)],
    ),
    ("empty-event-type-is-message", b"event:\ndata: 1\n\n", [(M, "1", "", None)]),
    ("event-type-without-data-not-carried", b"event: x\n\ndata: 1\n\n", [(M, "1", "", None)]),
    ("field-names-case-sensitive", b"Data: 1\nDATA: 2\ndata: 3\n\n", [(M, "3", "", None)]),
    ("unknown-field-ignored", b"foo: bar\ndata: 1\n\n", [(M, "1", "", None)]),
    ("field-without-colon", b"data\n\n", [(M, "", "", None)]),
    ("only-one-space-stripped", b"data:   x  \n\n", [(M, "  x  ", "", None)]),
    ("tab-not-stripped", b"data:\tx\n\n", [(M, "\tx", "", None)]),
    ("colon-in-value-kept", b"data: a: b:c\n\n", [(M, "a: b:c", "", None)]),
    ("comment-ignored", b": hi\ndata: 1\n: there\n\n", [(M, "1", "", None)]),
    ("comment-only-block-not-dispatched", b"id: 1\n\n: ping\n\n", []),
    ("empty-data-line-dispatches", b"data:\n\n", [(M, "", "", None)]),
    ("trailing-empty-data-line", b"data: a\ndata:\n\n", [(M, "a\n", "", None)]),
    # --- id ---
    ("id-persists", b"id: 7\ndata: a\n\ndata: b\n\n", [(M, "a", "7", None), (M, "b", "7", None)]),
    (
        "empty-id-resets",
        b"id: 7\ndata: a\n\nid\ndata: b\n\n",
        [(M, "a", "7", None), (M, "b", "", None)],
    ),
    (
        "id-with-nul-ignored",
        b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n",
        [(M, "a", "7", None), (M, "b", "7", None)],
    ),
    ("id-without-data-takes-effect", b"id: 5\n\ndata: a\n\n", [(M, "a", "5", None)]),
    ("id-after-data-in-block", b"data: a\nid: 3\n\n", [(M, "a", "3", None)]),
    # --- retry ---
    ("retry", b"retry: 1500\ndata: a\n\n", [(M, "a", "", 1500)]),
    ("retry-non-digit-ignored", b"retry: 15x\ndata: a\n\n", [(M, "a", "", None)]),
    ("retry-negative-ignored", b"retry: -1\ndata: a\n\n", [(M, "a", "", None)]),
    ("retry-unicode-digit-ignored", "retry: ٣\ndata: a\n\n".encode(), [(M, "a", "", None)]),
    ("retry-empty-ignored", b"retry:\ndata: a\n\n", [(M, "a", "", None)]),
    ("retry-leading-zeros", b"retry: 00000000000000000042\ndata: a\n\n", [(M, "a", "", 42)]),
    ("retry-above-max-clamped", b"retry: 99999999999\ndata: a\n\n", [(M, "a", "", MAX)]),
    ("retry-4301-digits-clamped", b"retry: %s\ndata: a\n\n" % (b"7" * 4301), [(M, "a", "", MAX)]),
    (
        "id-of-max-id-bytes-kept",
        b"id: %s\ndata: a\n\n" % LONG_ID.encode(),
        [(M, "a", LONG_ID, None)],
    ),
    (
        "id-over-max-id-bytes-ignored",  # counted in bytes: 2,048 characters, 4,097 bytes
        b"id: 1\ndata: a\n\nid: %sx\ndata: b\n\n" % LONG_ID.encode(),
        [(M, "a", "1", None), (M, "b", "1", None)],
    ),
    (
        "long-id-among-uniform-blocks-ignored",
        b"id: 1\ndata: a\n\nid: %s\ndata: b\n\nid: 3\ndata: c\n\n" % (b"y" * 5000),
        [(M, "a", "1", None), (M, "b", "1", None), (M, "c", "3", None)],
    ),
    (
        "retry-is-per-block",
        b"retry: 10\ndata: a\n\ndata: b\n\n",
        [(M, "a", "", 10), (M, "b", "", None)],
    ),
    # --- end of stream ---
    ("unterminated-final-block-dropped", b"data: a\n\ndata: b\n", [(M, "a", "", None)]),
    ("no-blank-line-nothing", b"data: a", []),
    (
        "extra-blank-lines",
        b"\n\n\ndata: a\n\n\n\n\ndata: b\n\n",
        [(M, "a", "", None), (M, "b", "", None)],
    ),
    (
        "many-one-line-events",
        b"data: 1\n\ndata: 2\n\ndata: 3\n\n",
        [(M, "1", "", None), (M, "2", "", None), (M, "3", "", None)],
    ),
    (
        "one-line-events-then-id",
        b"data: 1\n\ndata: 2\n\nid: 9\ndata: 3\n\n",
        [(M, "1", "", None), (M, "2", "", None), (M, "3", "9", None)],
    ),
    (
        "data-without-space-in-bulk",
        b"data: 1\n\ndata:2\n\n",
        [(M, "1", "", None), (M, "2", "", None)],
    ),
]


def _events(expected: list[Row]) -> list[Event]:
    return [Event(event=e, data=d, id=i, retry=r) for e, d, i, r in expected]


def _parse(chunks: list[bytes], last_event_id: str = "") -> tuple[list[Event], EventParser]:
    parser = EventParser(last_event_id=last_event_id)
    out: list[Event] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out, parser


def _feed_all(chunks: list[bytes], last_event_id: str = "") -> list[Event]:
    out, parser = _parse(chunks, last_event_id)
    parser.close()
    return out


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
class TestSpecTable:
    def test_whole(self, stream: bytes, expected: list[Row]) -> None:
        assert _feed_all([stream]) == _events(expected)

    def test_byte_at_a_time(self, stream: bytes, expected: list[Row]) -> None:
        assert _feed_all([stream[i : i + 1] for i in range(len(stream))]) == _events(expected)

    def test_every_split(self, stream: bytes, expected: list[Row]) -> None:
        for cut in range(len(stream) + 1):
            assert _feed_all([stream[:cut], stream[cut:]]) == _events(expected), cut


# Every complete line acts when it arrives: `retry` at once, even in a block never dispatched;
# `last_event_id` only at a blank line. (stream, retry, last_event_id), both before and after
# close(): the stream's end changes neither.
STATE: list[tuple[str, bytes, int | None, str]] = [
    ("retry-pending-after-data-blocks", b"data: a\n\nretry: 5000\n", 5000, ""),
    ("retry-pending-after-uniform-blocks", b"id: 1\ndata: a\n\nretry: 5000\n", 5000, "1"),
    ("retry-pending-without-space", b"data: a\n\ndata: b\n\nretry:250\n", 250, ""),
    ("retry-pending-after-data-line", b"data: a\n\ndata: b\nretry: 7\n", 7, ""),
    ("retry-pending-then-id", b"data: a\n\nid: 9\nretry: 30\n", 30, ""),
    ("retry-pending-last-valid-wins", b"retry: 1\ndata: a\n\nretry: 2\nretry: x\n", 2, ""),
    ("retry-pending-cr-ends-line", b"data: a\r\rretry: 7\r", 7, ""),
    ("retry-pending-crlf", b"data: a\r\n\r\nretry: 7\r\n", 7, ""),
    ("retry-pending-huge-clamped", b"data: a\n\nretry: %s\n" % (b"1" * 5000), MAX, ""),
    ("retry-unterminated-line-ignored", b"data: a\n\nretry: 7", None, ""),
    ("retry-in-comment-ignored", b"data: a\n\n: retry: 7\n", None, ""),
    ("retry-longer-name-ignored", b"data: a\n\nretryx: 7\nretry\n", None, ""),
    ("retry-two-spaces-ignored", b"data: a\n\nretry:  7\n", None, ""),
    ("retry-only-stream", b"retry: 3000\n", 3000, ""),
    ("id-pending-not-last-event-id", b"id: 1\ndata: a\n\nid: 2\ndata: b\n", None, "1"),
    ("id-alone-dispatched-at-blank-line", b"id: 1\ndata: a\n\nid: 2\n\n", None, "2"),
    ("id-pending-then-retry", b"id: 1\ndata: a\n\nid: 2\nretry: 9\n", 9, "1"),
    ("long-id-not-adopted", b"id: 1\n\nid: %s\n\n" % (b"z" * 4097), None, "1"),
]


def _state(chunks: list[bytes]) -> tuple[int | None, str]:
    _, parser = _parse(chunks)
    before = (parser.retry, parser.last_event_id)
    parser.close()
    assert (parser.retry, parser.last_event_id) == before
    return before


@pytest.mark.parametrize(
    ("stream", "retry", "last_id"), [c[1:] for c in STATE], ids=[c[0] for c in STATE]
)
class TestLinesActOnArrival:
    def test_whole(self, stream: bytes, retry: int | None, last_id: str) -> None:
        assert _state([stream]) == (retry, last_id)

    def test_byte_at_a_time(self, stream: bytes, retry: int | None, last_id: str) -> None:
        assert _state([stream[i : i + 1] for i in range(len(stream))]) == (retry, last_id)

    def test_every_split(self, stream: bytes, retry: int | None, last_id: str) -> None:
        for cut in range(len(stream) + 1):
            assert _state([stream[:cut], stream[cut:]]) == (retry, last_id), cut


class TestIncremental:
    def test_event_returned_as_soon_as_blank_line_arrives(self) -> None:
        parser = EventParser()
        assert parser.feed(b"data: a\n") == []
        assert parser.feed(b"\n") == [Event(data="a")]

    def test_cr_at_chunk_end_dispatches_without_waiting(self) -> None:
        parser = EventParser()
        assert parser.feed(b"data: a\r\r") == [Event(data="a")]
        assert parser.feed(b"\ndata: b\r\n\r\n") == [Event(data="b")]

    def test_last_event_id_seed_and_persistence(self) -> None:
        parser = EventParser(last_event_id="41")
        assert parser.feed(b"data: a\n\n") == [Event(data="a", id="41")]
        parser.feed(b"id: 42\ndata: b\n\n")
        assert parser.last_event_id == "42"

    def test_retry_attribute_keeps_last_valid(self) -> None:
        parser = EventParser()
        parser.feed(b"retry: 300\n\nretry: x\n\n")
        assert parser.retry == 300

    def test_retry_is_known_before_its_block_ends(self) -> None:
        """A client deciding how long to wait must see a retry as soon as its line is in."""
        parser = EventParser()
        assert parser.feed(b"data: a\n\ndata: b\n\nretry: 5000\ndata: c") == [
            Event(data="a"),
            Event(data="b"),
        ]
        assert parser.retry == 5000
        assert parser.feed(b"\n\n") == [Event(data="c", retry=5000)]

    def test_close_drops_unterminated_and_resets(self) -> None:
        parser = EventParser()
        parser.feed(b"data: partial")
        parser.close()
        assert parser.feed(b"data: b\n\n") == [Event(data="b")]


# --- properties -----------------------------------------------------------------------------

field_text = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)))
data_text = st.text(st.characters(blacklist_categories=("Cs",)))
events = st.builds(
    Event,
    event=field_text.filter(lambda s: s != ""),
    data=data_text,
    id=field_text,
    retry=st.none() | st.integers(0, 10**9),
)


def _split(blob: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(blob) + 1) for c in cuts})
    return [blob[a:b] for a, b in zip([0, *points], [*points, len(blob)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(st.lists(events, max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_property_encode_then_parse_round_trips_under_any_chunking(
    evs: list[Event], cuts: list[int]
) -> None:
    blob = b"".join(encode(e) for e in evs)
    got = _feed_all(_split(blob, cuts))
    expected = []
    last_id = ""
    for e in evs:
        last_id = e.id or last_id
        data = e.data.replace("\r\n", "\n").replace("\r", "\n")
        expected.append(Event(e.event, data, last_id, e.retry))
    assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 10**6), max_size=10))
def test_property_any_chunking_gives_the_same_events(blob: bytes, cuts: list[int]) -> None:
    assert _feed_all(_split(blob, cuts)) == _feed_all([blob])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_property_arbitrary_bytes_only_documented_errors_and_bounded_buffer(
    blob: bytes, limit: int
) -> None:
    parser = EventParser(max_event_bytes=limit)
    for i in range(0, len(blob), 37):
        try:
            for ev in parser.feed(blob[i : i + 37]):
                assert isinstance(ev, Event)
        except SSEEventTooLarge as err:  # the documented error; its events stay whole
            assert all(isinstance(e, Event) for e in err.events)  # noqa: PT017
        assert parser.buffered <= limit + 37


uniform_shapes = st.sampled_from(
    [("id",), ("event",), ("id", "event"), ("event", "id"), ("retry",), ()]
)


@settings(max_examples=200, deadline=None)
@given(
    uniform_shapes,
    st.lists(st.tuples(field_text, field_text.filter(bool), data_text), min_size=1, max_size=30),
    st.integers(1, 64),
    st.sampled_from([b"", b"retry: 9\n", b"id: 5\nretry: 8\ndata: x", b"retry: 1\r"]),
)
def test_property_uniform_streams_parse_the_same_in_bulk_and_line_by_line(
    shape: tuple[str, ...], rows: list[tuple[str, str, str]], chunk: int, pending: bytes
) -> None:
    """Streams whose blocks all have one shape take the bulk path; byte-wise feeding never does.
    Both leave the same retry and last event id, also with a block pending at the end."""
    evs = [
        Event(
            event=etype if "event" in shape else "message",
            data=data,
            id=eid if "id" in shape else "",
            retry=7 if "retry" in shape else None,
        )
        for eid, etype, data in rows
    ]
    blob = b"".join(encode(e) for e in evs) + pending
    chunks = [blob[i : i + chunk * 1024] for i in range(0, len(blob), chunk * 1024)]
    bulk, bulk_parser = _parse(chunks)
    bytewise, bytewise_parser = _parse([blob[i : i + 1] for i in range(len(blob))])
    assert bulk == bytewise
    assert (bulk_parser.retry, bulk_parser.last_event_id) == (
        bytewise_parser.retry,
        bytewise_parser.last_event_id,
    )
