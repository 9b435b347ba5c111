"""Notebook-side consumers: DataFrame batching, blocking collection, live views."""

from __future__ import annotations

from ._batcher import DataFrameBatcher
from ._collect import collect
from ._dashboard import Dashboard, dashboard
from ._view_base import View
from ._views import register_view
from ._watch import Subscription, watch

__all__ = [
    "Dashboard",
    "DataFrameBatcher",
    "Subscription",
    "View",
    "collect",
    "dashboard",
    "register_view",
    "watch",
]
