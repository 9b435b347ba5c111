"""The %sse magics, driven in a real IPython kernel against the real demo server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._kernel import Kernel, kernel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    with kernel(tmp_path_factory.mktemp("magics")) as kern:
        kern.ok("%load_ext ssenb")
        yield kern
        kern.run("%sse_server stop --all")


def test_server_start_is_idempotent_and_url_is_returned(k: Kernel) -> None:
    k.ok("h1 = %sse_server start")
    k.ok("h2 = %sse_server start")
    assert k.value("h1 is h2") == "True"
    k.ok("u = %sse_server url")
    url = k.value("u")
    assert url.startswith("http://127.0.0.1:")


def test_line_magic_returns_a_dataframe_from_a_demo_path(k: Kernel) -> None:
    k.ok("df = %sse /stream?n=5&interval=0")
    assert k.value("len(df)") == "5"
    assert k.value("list(df['id'])") == "['1', '2', '3', '4', '5']"
    assert k.value("list(df['data.count'])") == "[1, 2, 3, 4, 5]"


def test_n_timeout_and_output_variable(k: Kernel) -> None:
    k.ok("_ = %sse /ticks?rate=200 -n 7 -t 10 -o ticks")
    assert k.value("len(ticks)") == "7"


def test_timeout_returns_what_arrived_from_an_endless_stream(k: Kernel) -> None:
    k.ok("df = %sse /ticks?rate=20 -t 0.6")
    assert 1 <= int(k.value("len(df)")) <= 40


def test_event_filter(k: Kernel) -> None:
    k.ok("df = %sse /errors?fail_after=3 -e item_error")
    assert k.value("set(df['event'])") == "{'item_error'}"


def test_record_then_load(k: Kernel, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    k.ok(f"df = %sse /stream?n=4&interval=0 --record {path}")
    assert len(path.read_text().splitlines()) == 4
    k.ok(f"back = %sse_load {path}")
    assert k.value("list(back['id'])") == "['1', '2', '3', '4']"


def test_live_shows_a_view_and_returns_the_frame(k: Kernel) -> None:
    reply = k.ok("df = %sse /stream?n=5&interval=0.01 --live")
    assert k.value("len(df)") == "5"
    assert reply.displays, "the live view was displayed"


def test_bg_returns_a_subscription_at_once(k: Kernel) -> None:
    k.ok("sub = %sse /stream?n=3&interval=0.05 --bg")
    assert k.value("type(sub).__name__") == "Subscription"
    k.ok("sub.wait(10)")
    assert k.value("len(sub.df)") == "3"


def test_cell_magic_posts_the_body_as_json(k: Kernel) -> None:
    reply = k.ok(
        "%%sse /v1/chat/completions -o chunks\n"
        '{"model": "demo", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    )
    assert reply.status == "ok"
    assert int(k.value("len(chunks)")) >= 2
    assert k.value("chunks['data.object'].iloc[0]") == "chat.completion.chunk"


def test_llm_load_measures_the_demo_server_and_returns_rows(k: Kernel) -> None:
    reply = k.ok(
        "df = %sse_llm_load /v1/chat/completions -c 1,2 -r 2 "
        """-b '{"ttft": 0.05, "delay": 0.01, "jitter": 0, "max_completion_tokens": 5}'"""
    )
    assert reply.displays, "the live view was displayed"
    assert k.value("len(df)") == "4"
    assert k.value("sorted(set(df['concurrency']))") == "[1, 2]"
    assert k.value("bool((df['error'] == '').all())") == "True"
    assert k.value("list(df.attrs['summary']['concurrency'])") == "[1, 2]"
    assert 0.04 < float(k.value("float(df['ttft'].median())")) < 0.25  # 5x the promise


def test_llm_load_bg_returns_the_run(k: Kernel) -> None:
    k.ok('run = %sse_llm_load /v1/messages -c 1 -r 1 --bg -b \'{"delay": 0, "ttft": 0}\'')
    assert k.value("type(run).__name__") == "LoadRun"
    k.ok("rows = run.wait(30)")
    assert k.value("run.status") == "done"
    assert k.value("len(rows)") == "1"


USAGE_ERRORS = [
    ("missing-url", "%sse", "arguments are required"),
    ("bad-url", "%sse ftp://x", "must start with"),
    ("bad-n", "%sse /stream -n 0", "-n must be at least 1"),
    ("bad-header", "%sse /stream -H nocolon", "Name: value"),
    ("bad-json-body", "%%sse /v1/chat/completions\n{not json", "must be JSON"),
    ("bad-action", "%sse_server jump", "invalid choice"),
    ("missing-file", "%sse_load /no/such/file.jsonl", "no such recording"),
    ("bad-app", "%sse_server start --app nope", "MODULE:ATTR"),
    ("http-404", "%sse /no-such-endpoint", "404"),
    ("llm-bad-levels", "%sse_llm_load /v1/chat/completions -c 1,x", "comma-separated"),
    ("llm-zero-level", "%sse_llm_load /v1/chat/completions -c 0", "concurrency"),
    ("llm-bad-body", "%sse_llm_load /v1/chat/completions -b '[1]'", "JSON object"),
]


@pytest.mark.parametrize(
    ("code", "message"), [u[1:] for u in USAGE_ERRORS], ids=[u[0] for u in USAGE_ERRORS]
)
def test_user_mistakes_are_one_line_usage_errors(k: Kernel, code: str, message: str) -> None:
    reply = k.run(code)
    assert reply.status == "error"
    assert reply.error["ename"] == "UsageError", reply.error
    assert message in reply.error["evalue"]


def test_help_documents_every_option(k: Kernel) -> None:
    doc = k.value("get_ipython().find_line_magic('sse').__doc__")
    for option in ("-n", "--timeout", "--event", "--record", "--live", "--bg", "--output"):
        assert option in doc


def test_config_sets_defaults(k: Kernel) -> None:
    k.ok("%config SSEMagics.n = 2")
    try:
        k.ok("df = %sse /stream?n=6&interval=0")
        assert k.value("len(df)") == "2"
    finally:
        k.ok("%config SSEMagics.n = None")
