"""Notebook-side consumers: DataFrame batching and blocking collection (live views join here)."""

from __future__ import annotations

from ._batcher import DataFrameBatcher
from ._collect import collect
from ._watch import Subscription, watch

__all__ = [
    "DataFrameBatcher",
    "Subscription",
    "collect",
    "watch",
]
