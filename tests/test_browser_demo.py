"""A real browser on the demo page: Debian chromium's native EventSource, driven by Playwright.

The page at `/` connects by itself and shows live events as text; `/flaky` is read across
the browser's own automatic reconnects (it honours `retry:` and sends Last-Event-ID) with no
id lost or repeated; the page closes its source at `[DONE]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from _browser import browser_page, poll, screenshot

import ssenb
from ssenb.server import ServerHandle

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def demo() -> Iterator[ServerHandle]:
    with ssenb.serve(name="test-browser") as handle:
        yield handle


def test_index_page_shows_live_events_from_the_browsers_eventsource(demo: ServerHandle) -> None:
    with browser_page() as page:
        page.goto(demo.url + "/", wait_until="domcontentloaded")
        assert page.title() == "ssenb demo producers"
        count = poll(
            page, "() => window.ssenb.events.length >= 8 && window.ssenb.events.length", timeout=20
        )
        events = page.evaluate("() => window.ssenb.events")
        assert count >= 8
        assert [e["id"] for e in events[:8]] == [str(i) for i in range(1, 9)]
        assert page.evaluate("() => window.ssenb.state") == "open"
        log = page.inner_text("#log")
        assert '"value"' in log
        assert "[message #1]" in log
        path = screenshot(page, "browser-demo-index")
        assert path.stat().st_size > 10_000
        page.click("a.watch >> nth=0")  # the /stream example, a relative link
        poll(page, "() => window.ssenb.events.some(e => e.data.includes('Update 2'))", timeout=20)
        assert page.evaluate("() => window.ssenb.events[0].data") == (
            '{"count":1,"message":"Update 1"}'
        )


def test_event_data_is_shown_as_text_never_as_html(demo: ServerHandle) -> None:
    from ssenb import Event, EventStreamResponse

    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'

    async def payloads() -> AsyncIterator[Event]:
        yield Event(data=hostile, id="1")
        yield Event(data="[DONE]")

    demo.app.add_api_route("/hostile", lambda: EventStreamResponse(payloads()))
    with browser_page() as page:
        page.goto(demo.url + "/?watch=/hostile", wait_until="domcontentloaded")
        poll(page, "() => window.ssenb.state === 'done'", timeout=20)
        assert page.evaluate("() => window.pwned === undefined")
        assert page.evaluate("() => document.querySelectorAll('#log img, #log script').length") == 0
        assert hostile in page.inner_text("#log")


def test_flaky_across_the_browsers_own_reconnects_loses_and_repeats_nothing(
    demo: ServerHandle,
) -> None:
    n, every = 24, 5
    with browser_page() as page:
        page.goto(demo.url + "/?watch=none", wait_until="domcontentloaded")
        page.evaluate(f"() => window.ssenb.open('/flaky?n={n}&every={every}&retry=100')")
        poll(page, "() => window.ssenb.state === 'done'", timeout=30)
        events = page.evaluate("() => window.ssenb.events")
        opens = page.evaluate("() => window.ssenb.opens")
        screenshot(page, "browser-demo-flaky")
    ids = [e["id"] for e in events if e["data"] != "[DONE]"]
    assert ids == [str(i) for i in range(1, n + 1)]
    assert events[-1]["data"] == "[DONE]"
    # at least one connection per `every` events, all made by the browser itself; chromium
    # may drop events that arrive in the same read as the cut and fetch them again on resume
    assert (n - 1) // every + 1 <= opens <= n
