"""`ssenb.stop_all()`: stop everything ssenb runs in this process, in a safe order.

Live subscriptions stop first (their data and recordings are kept and flushed), then the
shared ssenb loop (work still on it is cancelled), then recorders still open are closed
(flushed), then every background server. A tutorial's last cell calls it and leaves no ssenb
thread or port behind. Everything is reached through the runtime's registries, so it never
imports pandas, widgets or the server layer just to find that nothing runs.
"""

from __future__ import annotations

from ._runtime import runtime

__all__ = ["stop_all"]


def stop_all() -> int:
    """Stop all subscriptions, the ssenb loop, open recorders and all servers; return the
    number of servers that were running."""
    return runtime.stop_all()
