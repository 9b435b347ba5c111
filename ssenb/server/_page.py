"""`/`: the endpoint list and a live view through the browser's own `EventSource`.

Event data is untrusted: the page writes it with `textContent` only, never as HTML. Page
state is exposed as `window.ssenb` (`events`, `opens`, `errors`, `state`, `open(url)`,
`close()`) so a browser test can drive and read it.
"""

from __future__ import annotations

import html

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from ._endpoints import Endpoint, endpoints

__all__ = ["install", "render"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1f2328;
 padding:0 1rem}
h1{font-size:1.4rem;margin:0 0 .2rem} .sub{color:#57606a;margin:0 0 1.2rem}
table{border-collapse:collapse;width:100%} td:first-child{white-space:nowrap}
th,td{text-align:left;padding:.3rem .5rem;
 border-bottom:1px solid #d0d7de;vertical-align:top} th{font-weight:600;color:#57606a}
code,pre,input{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px}
.bar{display:flex;gap:.5rem;margin:1rem 0 .5rem} input{flex:1;padding:.3rem .4rem}
button{padding:.3rem .8rem} #state{font-weight:600}
.open{color:#1a7f37} .connecting{color:#9a6700} .closed{color:#57606a}
#log{height:18rem;overflow:auto;background:#f6f8fa;border:1px solid #d0d7de;padding:.4rem;
 margin:0;white-space:pre-wrap}
"""

_SCRIPT = """
const S = window.ssenb = {events: [], opens: 0, errors: 0, state: 'closed', source: null};
const $ = (id) => document.getElementById(id);
function show() {
  $('state').textContent = S.state; $('state').className = S.state;
  $('count').textContent = S.events.length + ' events, ' + S.opens + ' connections, '
    + S.errors + ' errors';
}
function line(text) {
  const log = $('log');
  log.prepend(document.createTextNode(text + '\\n'));
  while (log.childNodes.length > 300) log.removeChild(log.lastChild);
}
function record(type, e) {
  S.events.push({type: type, id: e.lastEventId, data: e.data});
  line('[' + type + (e.lastEventId ? ' #' + e.lastEventId : '') + '] ' + e.data);
  if (e.data === '[DONE]') { S.close(); S.state = 'done'; }
  show();
}
S.open = function (url) {
  S.close(); S.events = []; S.opens = 0; S.errors = 0; $('url').value = url;
  const es = S.source = new EventSource(url);
  S.state = 'connecting';
  es.onopen = () => { S.opens += 1; S.state = 'open'; show(); };
  es.onerror = () => {
    S.errors += 1;
    S.state = es.readyState === 2 ? 'closed' : 'connecting';
    show();
  };
  es.onmessage = (e) => record('message', e);
  for (const t of ['connected', 'item_error', 'error', 'gap'])
    es.addEventListener(t, (e) => { if (e.data !== undefined) record(t, e); });
  show();
};
S.close = function () { if (S.source) { S.source.close(); S.source = null; } S.state = 'closed';
  show(); };
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a.watch');
  if (a) { ev.preventDefault(); S.open(a.getAttribute('href')); }
});
$('go').onclick = () => S.open($('url').value);
$('stop').onclick = () => S.close();
$('clear').onclick = () => { $('log').textContent = ''; };
const first = new URLSearchParams(location.search).get('watch');
if (first !== 'none') S.open(first || $('url').value);
"""


def _row(e: Endpoint) -> str:
    # relative links, so the page also works behind a path prefix (jupyter-server-proxy)
    example = html.escape(e.example.lstrip("/") or ".", quote=True)
    link = (
        f'<a class="watch" href="{example}">{html.escape(e.example)}</a>'
        if e.method == "GET"
        else f"<code>{html.escape(e.example)}</code>"
    )
    return (
        f"<tr><td><code>{html.escape(e.method)} {html.escape(e.path)}</code></td>"
        f"<td><code>{html.escape(e.params)}</code></td><td>{html.escape(e.summary)}</td>"
        f"<td>{link}</td></tr>"
    )


def render(rows: list[Endpoint], start: str = "ticks?rate=5") -> str:
    """The index page for these endpoints; the live view starts on `start`."""
    body = "".join(_row(e) for e in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ssenb demo producers</title>
<style>{_STYLE}</style></head><body>
<h1>ssenb demo producers</h1>
<p class="sub">Server-Sent Events for notebooks. Click an example to watch it live below;
<a href="docs">OpenAPI docs</a>.</p>
<table><thead><tr><th>endpoint</th><th>parameters (defaults)</th><th>behaviour</th>
<th>watch</th></tr></thead><tbody>{body}</tbody></table>
<div class="bar"><input id="url" value="{html.escape(start, quote=True)}" aria-label="URL">
<button id="go">watch</button><button id="stop">close</button>
<button id="clear">clear</button></div>
<p><span id="state" class="closed">closed</span> &middot; <span id="count"></span></p>
<pre id="log" aria-live="polite"></pre>
<script>{_SCRIPT}</script></body></html>"""


def install(app: FastAPI) -> None:
    """Serve the index page at `/`."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(render(endpoints(request.app)))
