"""Event: an immutable, keyword-constructible value with the contract's defaults."""

from __future__ import annotations

import json

import pytest

from ssenb import Event


def test_defaults() -> None:
    assert Event() == Event(event="message", data="", id="", retry=None)


def test_immutable() -> None:
    ev = Event(data="x")
    with pytest.raises(AttributeError):
        ev.data = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "value"),
    [('{"a": 1}', {"a": 1}), ("[1, 2]", [1, 2]), ("3", 3), ('"s"', "s")],
    ids=["object", "array", "number", "string"],
)
def test_json(data: str, value: object) -> None:
    assert Event(data=data).json() == value


def test_json_on_text_raises_json_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        Event(data="[DONE]").json()


def test_to_dict_and_hashable() -> None:
    ev = Event(event="t", data="d", id="1", retry=5)
    assert ev.to_dict() == {"event": "t", "data": "d", "id": "1", "retry": 5}
    assert len({ev, Event(event="t", data="d", id="1", retry=5)}) == 1
