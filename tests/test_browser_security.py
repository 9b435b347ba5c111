"""Security seen from a real browser (Debian chromium through Playwright).

A token-protected server is opened through `handle.browser_url()`: the one-time link sets an
HttpOnly, SameSite=Strict cookie, lands on `/`, and the page's native `EventSource` streams
with it; the link works once and the token never reaches the page. A DNS-rebinding page
(another name resolving to 127.0.0.1) gets 421. Hostile ids and endpoint rows on `/`, and
hostile event data in every notebook view's HTML, render as text and run nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from _browser import browser_page, poll, screenshot

import ssenb
from ssenb import Event, EventStreamResponse
from ssenb.server import Endpoint, ServerHandle, add_endpoint

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

HOSTILE = [
    '<img src=x onerror="window.pwned=1">',
    "</script><script>window.pwned=2</script>",
    '"><svg onload="window.pwned=3">',
    "<a href=\"javascript:window.pwned=4\">x</a><iframe srcdoc='<script>parent.pwned=5</script>'>",
]
# elements the payloads would create if parsed as HTML: handlers, javascript: URLs, img/iframe
INJECTED = """() => [...document.querySelectorAll('*')].filter(el =>
  [...el.attributes].some(a => a.name.startsWith('on') || /javascript:/i.test(a.value))
  || el.tagName === 'IMG' || el.tagName === 'IFRAME'
  || (el.tagName === 'SCRIPT' && el.textContent.includes('pwned'))).length"""


def _name() -> str:
    return f"test-bsec-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def guarded() -> Iterator[ServerHandle]:
    with ssenb.serve(name=_name(), token=True) as handle:
        yield handle


def test_the_login_link_sets_an_http_only_cookie_and_the_page_streams(
    guarded: ServerHandle,
) -> None:
    token = guarded.headers["Authorization"].split(" ")[1]
    link = guarded.browser_url()
    with browser_page() as page:
        assert page.goto(guarded.url + "/").status == 401
        response = page.goto(link, wait_until="domcontentloaded")
        assert response.status == 200
        assert page.url == guarded.url + "/"  # the code is gone from the address bar
        poll(page, "() => window.ssenb.events.length >= 3", timeout=20)
        events = page.evaluate("() => window.ssenb.events.slice(0, 3).map(e => e.id)")
        assert events == ["1", "2", "3"]
        assert page.evaluate("() => document.cookie") == ""  # HttpOnly: scripts cannot read it
        cookies = page.context.cookies()
        assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
            (f"ssenb-{guarded.port}", True, "Strict")
        ]
        assert token not in cookies[0]["value"]
        assert token not in page.content()
        fetched = page.evaluate("() => fetch('stream?n=2&interval=0').then(r => r.status)")
        assert fetched == 200
        screenshot(page, "browser-security-login")
        other = page.context.browser.new_context().new_page()
        assert other.goto(link).status == 401  # the link worked once
        assert other.goto(guarded.url + "/").status == 401  # and no cookie here


def _resolving(name: str) -> AbstractContextManager[Any]:
    """A page in a chromium that resolves `name` to 127.0.0.1, as a rebinding attack does."""
    rules = [f"--host-resolver-rules=MAP {name} 127.0.0.1", "--no-proxy-server"]
    return browser_page(width=1280, height=720, args=rules)


def test_a_dns_rebinding_page_gets_421_and_no_data() -> None:
    with ssenb.serve(name=_name()) as h, _resolving("rebind.test") as page:
        response = page.goto(f"http://rebind.test:{h.port}/?watch=none")
        assert response.status == 421
        assert "ssenb demo producers" not in page.content()
        events = page.goto(f"http://rebind.test:{h.port}/stream?n=1&interval=0")
        assert events.status == 421
        ok = page.goto(f"http://localhost:{h.port}/?watch=none")  # same browser, real name
        assert ok.status == 200
    with (
        ssenb.serve(name=_name(), allowed_hosts=["rebind.test"]) as h,
        _resolving("rebind.test") as page,
    ):
        assert page.goto(f"http://rebind.test:{h.port}/?watch=none").status == 200


def test_the_index_page_shows_hostile_ids_and_endpoint_rows_as_text() -> None:
    async def payloads() -> AsyncIterator[Event]:
        for i, text in enumerate(HOSTILE, 1):
            yield Event(data=text, id=f"{i}{text}".replace("\n", ""))
        yield Event(data="[DONE]")

    with ssenb.serve(name=_name()) as h, browser_page() as page:
        h.app.add_api_route("/hostile", lambda: EventStreamResponse(payloads()))
        add_endpoint(h.app, Endpoint("/hostile", HOSTILE[0], HOSTILE[1], "/hostile?" + HOSTILE[2]))
        page.goto(h.url + "/?watch=/hostile", wait_until="domcontentloaded")
        poll(page, "() => window.ssenb.state === 'done'", timeout=20)
        assert page.evaluate("() => window.pwned") is None
        assert page.evaluate(INJECTED) == 0
        log, table = page.inner_text("#log"), page.inner_text("table")
        assert all(text in log for text in HOSTILE)
        assert HOSTILE[0] in table
        assert HOSTILE[1] in table


def _hostile_events() -> list[Event]:
    import json

    events = []
    for i, text in enumerate(HOSTILE, 1):
        events += [
            Event(data=text, id=str(i)),
            Event(event=text, data=json.dumps({text: text, "value": i}), id=text),
            Event(data=json.dumps({"content": text})),
            Event(data=json.dumps({"choices": [{"delta": {"content": text}}]})),
            Event(data=json.dumps({"progress": 10 * i, "message": text, "status": text})),
        ]
    return events


def test_every_notebook_view_renders_hostile_event_data_as_text() -> None:
    from ssenb.notebook._views import VIEWS

    events = _hostile_events()
    parts = []
    for kind, cls in VIEWS.items():
        view = cls(title=HOSTILE[0])
        view.on_events(events, 1.0)
        view.on_status("error", RuntimeError(HOSTILE[1]))
        parts.append(f"<section id='{kind}'>{view.html(2.0)}</section>")
    with browser_page() as page:
        page.set_content("<!doctype html><body>" + "".join(parts) + "</body>")
        page.wait_for_timeout(300)  # give any injected handler the chance to run
        assert page.evaluate("() => window.pwned") is None
        assert page.evaluate(INJECTED) == 0
        for kind in VIEWS:
            shown = page.inner_text(f"#{kind}")
            assert HOSTILE[0] in shown, kind  # the title, as text
            assert HOSTILE[1] in shown, kind  # the error message, as text
        screenshot(page, "browser-security-views")
