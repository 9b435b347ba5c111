"""Serving behind jupyter-server-proxy: where a browser finds the server, which requests it sent.

On JupyterHub (and any remote Jupyter server) the browser cannot reach the kernel's
127.0.0.1; jupyter-server-proxy maps `<base_url>proxy/<port>/` on the Jupyter server to
`127.0.0.1:<port>`, after Jupyter's own login. `serve(proxy=...)` says how to build that
address:

    "auto"   (default) the proxy path when the kernel runs in a JupyterHub single-user
             server (`JUPYTERHUB_SERVICE_PREFIX` is set) and jupyter-server-proxy is
             installed in this environment; otherwise no proxy (the direct URL works)
    None     never: `browser_url()` gives the direct `http://127.0.0.1:<port>/...`
    "..."    a template with `{port}`: a path (`"/user/me/proxy/{port}/"`) or a full URL
             (`"https://hub.example.org/user/me/proxy/{port}/"`)

jupyter-server-proxy forwards the browser's `Host` (the hub's public name) and adds
`X-Forwarded-Prefix: <base_url>proxy/<port>`. With a proxy set, the Host check also accepts a
request that comes from a loopback peer and carries that prefix for this server's own port;
nothing else is opened (no remote bind, no other name). A page on the same machine that
rebinds a name to 127.0.0.1 could forge that header too: on a shared or local machine use
`token=True`, whose cookie such a page never gets.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os

from starlette.types import Scope

__all__ = ["AUTO", "is_proxied", "resolve_base"]

AUTO = "auto"
_PREFIX_HEADERS = (b"x-forwarded-prefix", b"x-proxycontextpath")


def _proxy_installed() -> bool:
    try:
        return importlib.util.find_spec("jupyter_server_proxy") is not None
    except (ImportError, ValueError):
        return False


def resolve_base(proxy: str | None, port: int) -> str | None:
    """The browser's base address of the server on `port` (ending in "/"), or None (direct)."""
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be 'auto', None or a template string, not {proxy!r}")
    if proxy == AUTO:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "")
        if not prefix or not _proxy_installed():
            return None
        proxy = prefix.rstrip("/") + "/proxy/{port}/"
    if "{port}" not in proxy:
        raise ValueError(f"proxy template {proxy!r} must contain '{{port}}'")
    if not (proxy.startswith("/") or proxy.startswith(("http://", "https://"))):
        raise ValueError(f"proxy template {proxy!r} must be a path ('/...') or an http(s) URL")
    base = proxy.replace("{port}", str(port))
    return base if base.endswith("/") else base + "/"


def _loopback_peer(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


def is_proxied(scope: Scope, port: int) -> bool:
    """True for a request jupyter-server-proxy forwarded to this server (see module doc)."""
    if not _loopback_peer(scope):
        return False
    tail = f"/proxy/{port}"
    for key, value in scope["headers"]:
        if key in _PREFIX_HEADERS:
            prefix = value.decode("latin-1").rstrip("/")
            if prefix == tail or (prefix.endswith(tail) and prefix[: -len(tail)].startswith("/")):
                return True
    return False
