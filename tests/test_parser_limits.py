"""EventParser's bounds on hostile input: `max_event_bytes` (one event's size, skipped with
`SSEEventTooLarge`) and `max_id_bytes` (the id kept for resume, longer ones ignored like an
id containing NUL). The clamp of absurd `retry:` values is in test_parser.py's spec table.
"""

from __future__ import annotations

import pytest

from ssenb import Event, EventParser, SSEEventTooLarge


class TestMaxEventBytes:
    def test_oversized_unterminated_event_raises_and_keeps_earlier_events(self) -> None:
        parser = EventParser(max_event_bytes=100)
        with pytest.raises(SSEEventTooLarge) as info:
            parser.feed(b"data: ok\n\ndata: " + b"x" * 500)
        assert info.value.events == [Event(data="ok")]

    def test_buffer_stays_bounded_while_skipping(self) -> None:
        parser = EventParser(max_event_bytes=1000)
        with pytest.raises(SSEEventTooLarge):
            parser.feed(b"data: " + b"x" * 2000)
        for _ in range(100):  # 6.4 MB more of the same line: nothing raised, nothing buffered
            assert parser.feed(b"x" * 65536) == []
            assert parser.buffered == 0
        assert parser.feed(b"\n\ndata: after\n\n") == [Event(data="after")]

    def test_oversized_complete_block_skipped_and_later_events_kept(self) -> None:
        parser = EventParser(max_event_bytes=50)
        with pytest.raises(SSEEventTooLarge) as info:
            parser.feed(b"data: a\n\ndata: " + b"y" * 100 + b"\n\ndata: b\n\n")
        assert info.value.events == [Event(data="a"), Event(data="b")]
        assert parser.feed(b"data: c\n\n") == [Event(data="c")]

    def test_events_at_the_limit_pass(self) -> None:
        parser = EventParser(max_event_bytes=20)
        assert parser.feed(b"data: " + b"z" * 14 + b"\n\n") == [Event(data="z" * 14)]


class TestMaxIdBytes:
    @pytest.mark.parametrize(
        ("limit", "eid", "kept"),
        [
            (None, "x" * 100_000, True),
            (0, "x", False),
            (8, "12345678", True),
            (8, "123456789", False),
            (8, "éééé", True),
            (8, "éééé1", False),
            (8, "😀😀", True),
            (8, "😀😀1", False),
        ],
        ids=["unbounded", "zero", "ascii-at", "ascii-over", "2-byte-at", "2-byte-over",
             "4-byte-at", "4-byte-over"],
    )  # fmt: skip
    def test_max_id_bytes(self, limit: int | None, eid: str, kept: bool) -> None:
        # the bulk path, the line path's usual spelling, and its general field rule
        for stream in (
            f"id: {eid}\ndata: a\n\n",
            f":\nid: {eid}\ndata: a\n\n",
            f"id:{eid}\ndata: a\n\n",
        ):
            parser = EventParser("seed", max_id_bytes=limit)
            (event,) = parser.feed(stream.encode())
            assert event.id == parser.last_event_id == (eid if kept else "seed")

    def test_max_id_bytes_is_keyword_only_and_checked(self) -> None:
        assert EventParser().max_id_bytes == EventParser.DEFAULT_MAX_ID_BYTES == 4096
        assert EventParser("7", 100).max_event_bytes == 100
        with pytest.raises(TypeError):
            EventParser("7", 100, 10)  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="max_id_bytes"):
            EventParser(max_id_bytes=-1)
