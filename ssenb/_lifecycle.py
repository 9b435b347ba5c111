"""`ssenb.stop_all()`: stop everything ssenb runs in this process, in a safe order.

Live subscriptions stop first (their data and recordings are kept and flushed), then the
ssenb loop thread they ran on, then every background server. A tutorial's last cell calls it
and leaves no ssenb thread or port behind. It reads only `ssenb._state` and modules already
imported, so it never imports pandas or widgets just to find that nothing runs.
"""

from __future__ import annotations

import sys

from . import _state

__all__ = ["stop_all"]


def stop_all() -> int:
    """Stop all subscriptions, the ssenb loop and all servers; return the servers stopped."""
    for sub in list(_state.subscriptions.values()):
        sub.stop()
    loop_module = sys.modules.get("ssenb.notebook._loop")
    if loop_module is not None:
        loop_module.shutdown()
    from .server import stop_all as stop_servers

    return stop_servers()
