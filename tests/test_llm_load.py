"""`ssenb.llm.load`: what it measures, against the demo producers run as a separate process
(so the client is measured as a user's kernel would be), and how it reports trouble.

Accuracy rule (issue 21): the median TTFT over requests and the median ITL over every gap are
within 10% or 2 ms (whichever is larger) of what the mock was told (`ttft`, `delay`,
`jitter=0`). The 64-stream case paces tokens at 100 ms: the single demo server process on
this shared 2-core machine cannot emit 64 x 100 tokens/s itself, and a server that falls
behind is (correctly) measured as slow, which is not what this test is about; for the same
reason its streams start over a 2 s ramp (64 requests parsed at one instant by that one
process add up to 200 ms to the last one's TTFT here, which `load` reports, as it should).
The configured TTFTs are 0.3 s (1 s at 64 streams) so that 10% exceeds the few ms the
loaded demo server itself takes to accept a request before its mock clock starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from _procs import ssenb_serve

from ssenb import llm
from ssenb.llm import _load
from ssenb.llm._load import BUSY_LIMIT, Level, Sample, percentile, target_for
from ssenb.llm._load_view import LoadView
from ssenb.notebook._views import make_view

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """`ssenb serve --port 0` in a child process; its base URL."""
    with ssenb_serve() as url:
        yield url


def close(measured: float | None, configured: float) -> bool:
    return measured is not None and abs(measured - configured) <= max(0.1 * configured, 0.002)


# path, concurrency, requests, ttft, delay, length cap (the provider's own field); ramped
# levels send 2 requests per stream, so all c are open at once after the ramp
ACCURACY = [
    ("chat-1", "/v1/chat/completions", 1, 5, 0.3, 0.04, {"max_completion_tokens": 8}),
    ("chat-16", "/v1/chat/completions", 16, 32, 0.3, 0.05, {"max_completion_tokens": 10}),
    ("chat-64", "/v1/chat/completions", 64, 128, 1.0, 0.1, {"max_completion_tokens": 10}),
    ("responses-4", "/v1/responses", 4, 4, 0.3, 0.04, {"max_output_tokens": 10}),
    ("anthropic-4", "/v1/messages", 4, 4, 0.3, 0.04, {"max_tokens": 10}),
    ("gemini-4", "/v1beta/models/m:streamGenerateContent", 4, 4, 0.3, 0.04,
     {"generationConfig": {"maxOutputTokens": 10}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "c", "n", "ttft", "delay", "cap"),
    [a[1:] for a in ACCURACY],
    ids=[a[0] for a in ACCURACY],
)
def test_measured_ttft_and_itl_match_the_configured_pacing(
    base: str, path: str, c: int, n: int, ttft: float, delay: float, cap: dict[str, Any]
) -> None:
    body = {"ttft": ttft, "delay": delay, "jitter": 0, **cap}
    ramp = 2.0 if c >= 64 else 1.0 if c >= 16 else 0.0
    df = llm.load(base + path, concurrency=c, requests=n, body=body, ramp=ramp,
                  display=False, background=True).wait(120)  # fmt: skip
    summary = df.attrs["summary"]
    assert len(df) == n
    assert (df["error"] == "").all(), df["error"].tolist()
    assert (df["concurrency"] == c).all()
    level = summary.iloc[0]
    assert level["peak_streams"] == c  # all c streams were open at once
    assert close(level["ttft_p50"], ttft), (level["ttft_p50"], ttft)
    assert close(level["itl_p50"], delay), (level["itl_p50"], delay)
    assert (df["deltas"] >= 7).all()
    assert (df["output_tokens"] >= df["deltas"]).all()  # as reported by the provider's usage
    assert not level["client_bound"], summary.to_string()
    assert level["client_us_per_event"] > 0


def test_rows_and_summary_cover_every_level_in_order(base: str) -> None:
    body = {"ttft": 0.02, "delay": 0.005, "jitter": 0, "max_completion_tokens": 5}
    run = llm.load(base + "/v1/chat/completions", concurrency=(1, 3), body=body, display=False,
                   background=True)  # fmt: skip
    df = run.wait(60)
    assert run.status == "done"
    assert run.error is None
    assert df.groupby("concurrency").size().to_dict() == {1: 4, 3: 6}  # default 2/stream, >= 4
    assert list(run.summary["concurrency"]) == [1, 3]
    assert list(run.summary["peak_streams"]) == [1, 3]
    assert sorted(df["request"]) == list(range(10))
    assert (df["start"].diff().dropna() > -1).all()
    assert df["start"].min() >= 0
    for column in ("ttft", "itl_p50", "itl_p99", "output_tokens", "tokens_per_s", "error"):
        assert column in df.columns
    assert (df["itl_p99"] >= df["itl_p50"]).all()


def test_duration_bounds_a_level(base: str) -> None:
    body = {"ttft": 0.01, "delay": 0.01, "jitter": 0, "max_completion_tokens": 5}
    started = time.monotonic()
    df = llm.load(base + "/v1/chat/completions", concurrency=2, duration=0.5, body=body,
                  display=False, background=True).wait(30)  # fmt: skip
    assert time.monotonic() - started < 5
    assert 2 <= len(df) <= 20


@pytest.fixture(params=["lean", "httpx"])
def http_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both HTTP paths of `load`: its own reader, and httpx (where a proxy is configured)."""
    if request.param == "httpx":
        monkeypatch.setattr(_load, "usable", lambda url: False)
    return str(request.param)


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        ("/v1/chat/completions", {"messages": []}, "HTTP 422: {"),
        ("/v1/chat/completions", {"fail_after": 2, "delay": 0}, "server_error"),
        ("/no-such-endpoint", {}, "HTTP 404: {"),
        ("/v1/chat/completions", {"ttft": 3}, "ReadTimeout: "),
    ],
    ids=["bad-request", "mid-stream-error", "not-found", "read-timeout"],
)
def test_failures_are_rows_with_their_error_not_exceptions(
    base: str, http_path: str, path: str, body: dict[str, Any], error: str
) -> None:
    df = llm.load(base + path, dialect="openai-chat", concurrency=2, requests=2, body=body,
                  timeout=0.5, display=False, background=True).wait(30)  # fmt: skip
    assert len(df) == 2
    assert all(error in e for e in df["error"]), df["error"].tolist()
    assert df.attrs["summary"].iloc[0]["errors"] == 2


def test_unreachable_server_gives_error_rows(http_path: str) -> None:
    df = llm.load("http://127.0.0.1:9/v1/chat/completions", concurrency=1, requests=2,
                  display=False, timeout=5, background=True).wait(30)  # fmt: skip
    assert len(df) == 2
    assert all(e.startswith("ConnectError: ") for e in df["error"]), df["error"].tolist()


@pytest.mark.parametrize(
    ("no_proxy", "error"), [("", "ConnectError"), ("127.0.0.1", "")], ids=["proxied", "exempt"]
)
def test_a_proxy_from_the_environment_is_honoured_through_httpx(
    base: str, monkeypatch: pytest.MonkeyPatch, no_proxy: str, error: str
) -> None:
    for name in ("HTTPS_PROXY", "ALL_PROXY", "https_proxy", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy nobody listens on
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    body = {"ttft": 0.01, "delay": 0.005, "jitter": 0, "max_completion_tokens": 3}
    df = llm.load(base + "/v1/chat/completions", concurrency=1, requests=1, body=body,
                  timeout=5, display=False, background=True).wait(30)  # fmt: skip
    assert df["error"].iloc[0].startswith(error), df["error"].tolist()


def test_stop_ends_the_sweep_and_keeps_finished_requests(base: str) -> None:
    body = {"ttft": 0.01, "delay": 0.01, "jitter": 0, "max_completion_tokens": 3}
    run = llm.load(base + "/v1/chat/completions", concurrency=1, requests=500, body=body,
                   display=False, background=True)  # fmt: skip
    time.sleep(0.5)
    run.stop()
    assert run.status == "stopped"
    df = run.df
    assert 1 <= len(df) < 500
    assert (df["error"] == "").all()


TARGETS = [
    ("chat", "http://h/v1/chat/completions", "POST", "openai-chat", "messages"),
    ("responses", "http://h/v1/responses", "POST", "openai-responses", "input"),
    ("anthropic", "http://h/v1/messages", "POST", "anthropic", "max_tokens"),
    ("gemini", "http://h/v1beta/models/g:streamGenerateContent", "POST", "gemini", "contents"),
    ("ssenb", "http://h/chat", "GET", "ssenb", "_query"),
]


@pytest.mark.parametrize(
    ("url", "method", "provider", "key"), [t[1:] for t in TARGETS], ids=[t[0] for t in TARGETS]
)
def test_the_dialect_and_request_shape_follow_the_path(
    url: str, method: str, provider: str, key: str
) -> None:
    target = target_for(url, model="m", body={"delay": 0.1})
    assert (target.method, target.provider) == (method, provider)
    made = target.body("hi")
    assert made is not None
    assert key in made
    if provider == "gemini":
        assert target.url.endswith("?alt=sse")
    if method == "GET":
        assert made["_query"] == "?prompt=hi&delay=0.1"
    else:
        assert made["delay"] == 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": ()}, "concurrency"),
        ({"requests": 0}, "requests"),
        ({"duration": -1.0}, "duration"),
        ({"ramp": -1.0}, "ramp"),
        ({"prompts": []}, "prompts"),
        ({"dialect": "cobol"}, "unknown dialect"),
    ],
    ids=[
        "zero",
        "empty",
        "no-requests",
        "negative-duration",
        "negative-ramp",
        "no-prompts",
        "bad-dialect",
    ],
)
def test_bad_arguments_raise_value_errors_before_anything_runs(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        llm.load("http://127.0.0.1:9/v1/chat/completions", display=False, **kwargs)


def test_a_row_is_computed_from_arrival_times() -> None:
    sample = Sample(4, 7, "p", start=1.0, status=200, times=[0.1, 0.2, 0.25, 0.45], events=6,
                    cpu=0.0006, end=1.5)  # fmt: skip
    sample.ttft = 0.1
    row = sample.row()
    assert row["itl_p50"] == pytest.approx(0.1)
    assert row["itl_p99"] == pytest.approx(0.1 + 0.98 * 0.1)
    assert row["tokens_per_s"] == pytest.approx(3 / 0.35)
    assert row["duration"] == pytest.approx(0.5)
    assert row["client_us_per_event"] == pytest.approx(100)
    assert row["output_tokens"] == 4  # no usage reported: the deltas counted


@pytest.mark.parametrize(
    ("cpu", "lags", "bound"),
    [(0.1, [0.0001] * 9, False), (BUSY_LIMIT + 0.05, [0.0001] * 9, True), (0.1, [0.01] * 9, True),
     (0.1, [0.0001] * 98 + [0.05, 0.05], False)],
    ids=["idle", "cpu-saturated", "always-late", "rare-scheduler-noise"],
)  # fmt: skip
def test_client_bound_means_the_loop_thread_was_saturated(
    cpu: float, lags: list[float], bound: bool
) -> None:
    assert Level(16, wall=1.0, cpu=cpu, lags=lags).client_bound is bound


def test_the_view_is_registered_renders_escaped_and_reports_saturation() -> None:
    assert isinstance(make_view("llm-load", "http://x/<b>"), LoadView)
    view = LoadView(title="http://x/<b>")
    view.start_level(8, time.monotonic())
    sample = Sample(8, 0, "p", 0.0, times=[0.05, 0.06, 0.07], events=3)
    sample.ttft = 0.05
    view.on_start(sample)
    assert "1 in flight" in view.text()
    view.on_done(sample)
    view.end_level(Level(8, wall=1.0, cpu=0.95))
    html = view.html()
    assert "&lt;b&gt;" in html
    assert "<b>x" not in html
    assert "saturated" in html
    assert "50.0 ms" in html
    assert "1 done" in view.text()


def test_percentile_interpolates() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([0.0, 1.0], 0.99) == pytest.approx(0.99)


def test_the_default_form_blocks_and_returns_the_dataframe(base: str) -> None:
    """`ssenb.llm.load(url, ...) -> DataFrame` (DESIGN's contract): one row per request."""
    body = {"ttft": 0.01, "delay": 0.005, "jitter": 0, "max_completion_tokens": 4}
    df = llm.load(base + "/v1/chat/completions", concurrency=(1, 2), requests=2, body=body,
                  display=False)  # fmt: skip
    assert isinstance(df, pd.DataFrame)
    assert list(df["concurrency"]) == [1, 1, 2, 2]
    assert (df["error"] == "").all()
    assert (df["output_tokens"] == 4).all()
    assert list(df.attrs["summary"]["concurrency"]) == [1, 2]
