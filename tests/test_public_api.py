"""The public namespace: one sorted `__all__`, every name importable, one exception root."""

from __future__ import annotations

import importlib

import pytest

import ssenb


def test_all_is_sorted_and_unique() -> None:
    assert ssenb.__all__ == sorted(set(ssenb.__all__))


@pytest.mark.parametrize("name", ssenb.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(ssenb, name) is not None


def test_lazy_names_are_all_public() -> None:
    assert set(ssenb._LAZY) <= set(ssenb.__all__)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        ssenb.no_such_thing  # noqa: B018


ERRORS = [
    "SSEContentTypeError",
    "SSEEncodeError",
    "SSEEventTooLarge",
    "SSEIdleTimeout",
    "SSERetriesExhausted",
    "SSEStatusError",
]


@pytest.mark.parametrize("name", ERRORS)
def test_every_error_derives_from_the_root_and_carries_context(name: str) -> None:
    cls = getattr(ssenb, name)
    assert issubclass(cls, ssenb.SSEError)
    err = cls(
        "boom",
        url="http://127.0.0.1:1/x",
        status=500,
        headers={"a": "b"},
        body="<html>",
        last_event_id="9",
    )
    assert (err.url, err.status, err.headers, err.body, err.last_event_id) == (
        "http://127.0.0.1:1/x",
        500,
        {"a": "b"},
        "<html>",
        "9",
    )
    assert "status=500" in str(err)
    assert "last_event_id='9'" in str(err)


def test_private_modules_declare_their_exports() -> None:
    for mod in ("_models", "_parser", "_encoder", "_errors"):
        module = importlib.import_module(f"ssenb.{mod}")
        for name in module.__all__:
            assert getattr(ssenb, name) is getattr(module, name)


def test_dashboard_is_public_and_lazy() -> None:
    from ssenb.notebook._dashboard import dashboard

    assert "dashboard" in ssenb.__all__
    assert ssenb.dashboard is dashboard


def test_doctor_is_public_and_says_one_finding_per_line() -> None:
    found = ssenb.doctor()
    assert repr(found).splitlines() == found.lines
    assert found.lines[0] == f"front end: {found.frontend}"
