"""`DataFrameBatcher`: events in, a live pandas DataFrame out, without quadratic growth.

Why it is shaped like this:

1. `add()` only appends the event (a tuple) and its time to two lists: no dict per row,
   no DataFrame per row (one-row appends cost ~2 ms each and grow with the frame).
2. A flush builds one Arrow `RecordBatch` from those lists in one go. JSON data is parsed
   into `data.<key>` columns by the loader's own code (`ssenb.recording._flatten`), so a live
   frame and a reloaded recording have the same columns and dtypes: at once for each batch
   when `on_batch` is set (a live view needs them), otherwise for all new batches together
   when `.df` is read (an Arrow JSON read costs ~1 ms per call, as much as 1000 rows).
3. `.df` is rebuilt lazily from the list of batches and cached until the next flush: one
   concatenation when someone looks, never one per batch.
4. Column types only widen across batches (null -> anything, int -> float); a field that
   changes type otherwise becomes a string column everywhere, with a `SchemaWarning`.
5. There is no timer thread: the `flush_interval` rule is checked on every `add()` and by
   `tick()`, which a consumer loop calls while the stream is quiet (`watch` does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any

import pandas as pd
import pyarrow as pa

from .._models import Event
from ..recording._flatten import (
    ENVELOPE,
    conform,
    envelope_batch,
    epoch_to_timestamp,
    flatten_data,
    merge_type,
    run_timestamps,
    to_frame,
    warn_changed,
)

__all__ = ["DataFrameBatcher"]

_ENVELOPE_NAMES = tuple(ENVELOPE.names)
#: rows parsed together when `.df` is read: enough to amortise a read's fixed cost, few
#: enough to keep the parser's scratch memory small
_RUN_ROWS = 32_768


class DataFrameBatcher:
    """Collect events into Arrow batches; `.df` is everything kept, as one DataFrame.

    Args:
        batch_size: flush after this many pending rows.
        flush_interval: flush pending rows this many seconds after the first of them arrived
            (checked on `add()` and `tick()`).
        max_rows: keep only the newest `max_rows` rows (None: keep all).
        on_batch: called as `on_batch(frame)` after each flush with that batch's rows as a
            DataFrame (same columns and dtypes as `.df` at that moment), in the thread that
            flushed and outside the batcher's lock, so it may read `.df`. Live views use it;
            an exception it raises propagates to the caller of `add`/`flush`.

    Columns: `time` (UTC), `event`, `id`, `retry`, `data` (raw), then `data.<key>`.
    Thread-safe: a consumer thread may add while another thread reads `.df`.
    """

    def __init__(
        self,
        batch_size: int = 1000,
        flush_interval: float = 0.5,
        max_rows: int | None = None,
        *,
        on_batch: Callable[[pd.DataFrame], Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size!r}")
        if max_rows is not None and max_rows < 0:
            raise ValueError(f"max_rows must be >= 0 or None, not {max_rows!r}")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_rows = max_rows
        self.on_batch = on_batch
        self._lock = threading.Lock()
        self._clear_pending()
        self._first = 0.0
        self._batches: list[pa.RecordBatch] = []
        self._parsed: list[bool] = []  # False: envelope only, data parsed when .df is read
        self._kept = 0
        self._flushed = 0  # rows ever flushed (max_rows trims don't lower it): for `since`
        self._types: dict[str, pa.DataType] = {}
        self._frame: pd.DataFrame | None = None

    def _clear_pending(self) -> None:
        # pending arrival times: one per `add`, one per `add_batch` read with its row count
        # in `_tcounts` (None until a read of several rows came: `add` alone stays one append)
        self._tvals: list[float] = []
        self._tcounts: list[int] | None = None
        self._npending = 0
        # pending rows: columns (event, data, id, retry) first, then the Events from `add`
        # (tuples: transposed into the columns in C at the next batch or flush)
        self._columns: tuple[list[str], list[str], list[str], list[int | None]] = ([], [], [], [])
        self._pending: list[Event] = []

    def _columnize_locked(self, events: Sequence[Event]) -> None:
        if events:
            kinds, data, ids, retries = zip(*events, strict=True)
            columns = self._columns
            columns[0].extend(kinds)
            columns[1].extend(data)
            columns[2].extend(ids)
            columns[3].extend(retries)

    def add(self, event: Event, time: float | None = None) -> None:
        """Add one event received at `time` (UTC epoch seconds; now by default)."""
        with self._lock:
            at = _now() if time is None else time
            n = self._npending = self._npending + 1
            if n == 1:
                self._first = _mono()
            self._tvals.append(at)
            if self._tcounts is not None:
                self._tcounts.append(1)
            self._pending.append(event)
            due = n >= self.batch_size or _mono() - self._first >= self.flush_interval
            batch = self._flush_locked() if due else None
        if batch is not None:
            self._notify(batch)

    def add_batch(self, events: Sequence[Event], time: float | None = None) -> None:
        """Add the events of one read, all received at `time` (now by default): the batch
        path of a consumer loop, with no Python work per event. Once `batch_size` rows (or
        `flush_interval`) are pending they are flushed together, so one flush may hold more
        than `batch_size` rows (use `extend` for flushes of exactly `batch_size`)."""
        if not events:
            return
        with self._lock:
            if not self._npending:
                self._first = _mono()
            self._add_times(_now() if time is None else time, len(events))
            if self._pending:
                self._columnize_locked(self._pending)
                self._pending = []
            self._columnize_locked(events)  # no Event outlives the read that made it
            due = self._npending >= self.batch_size or _mono() - self._first >= self.flush_interval
            batch = self._flush_locked() if due else None
        if batch is not None:
            self._notify(batch)

    def _add_times(self, at: float, count: int) -> None:
        self._npending += count
        if self._tcounts is None:
            self._tcounts = [1] * len(self._tvals)
        self._tvals.append(at)
        self._tcounts.append(count)

    def extend(self, events: Iterable[Event], times: Iterable[float] | None = None) -> None:
        """Add many events (with their times, or now), flushing every `batch_size` rows."""
        if times is None:
            for event in events:
                self.add(event)
        else:
            for event, at in zip(events, times, strict=True):
                self.add(event, at)

    def tick(self) -> bool:
        """Flush if the oldest pending row is `flush_interval` old; True when it flushed."""
        with self._lock:
            due = bool(self._npending) and _mono() - self._first >= self.flush_interval
            batch = self._flush_locked() if due else None
        if batch is not None:
            self._notify(batch)
        return batch is not None

    def flush(self) -> None:
        """Turn the pending rows into a batch now (nothing happens when none are pending)."""
        with self._lock:
            batch = self._flush_locked()
        if batch is not None:
            self._notify(batch)

    def _flush_locked(self) -> pa.RecordBatch | None:
        if not self._npending:
            return None
        self._columnize_locked(self._pending)
        kinds, data, ids, retries = self._columns
        if self._tcounts is None:
            times = epoch_to_timestamp(pa.array(self._tvals, pa.float64()))
        else:
            times = run_timestamps(self._tvals, self._tcounts)
        if kinds.count(kinds[0]) == len(kinds):  # one event type (the usual): no conversion
            columns = envelope_batch(times, (), ids, retries, data)
            columns[1] = pa.repeat(pa.scalar(kinds[0], pa.string()), len(kinds))
        else:
            columns = envelope_batch(times, kinds, ids, retries, data)
        self._clear_pending()
        batch = pa.RecordBatch.from_arrays(columns, names=list(_ENVELOPE_NAMES))
        parsed = self.on_batch is not None  # a live view needs the data columns now
        if parsed:
            batch = self._parse(batch)
        self._batches.append(batch)
        self._parsed.append(parsed)
        self._kept += batch.num_rows
        self._flushed += batch.num_rows
        self._trim()
        self._frame = None
        return batch

    def _parse(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Add the `data.<key>` columns to an envelope batch, widening the known types."""
        return self._parse_run([batch])[0]

    def _parse_run(self, run: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
        """Parse a run of envelope batches in one go (one Arrow JSON read per event type,
        not per batch: each read costs ~1 ms, as much as 1000 rows), then slice the new
        columns back onto each batch without copying the envelope."""
        events = pa.chunked_array([b.column(1) for b in run])
        data = pa.chunked_array([b.column(4) for b in run])
        names: list[str] = []
        extra: list[pa.Array] = []
        for name, arr in flatten_data(events, data):
            old = self._types.get(name)
            merged, changed = merge_type(old, arr.type)
            if changed and old is not None:
                warn_changed(name, old, arr.type)
            self._types[name] = merged
            names.append(name)
            extra.append(conform(arr, merged))
        out = []
        start = 0
        for b in run:
            columns = [b.column(i) for i in range(len(_ENVELOPE_NAMES))]
            columns += [arr.slice(start, b.num_rows) for arr in extra]
            out.append(pa.RecordBatch.from_arrays(columns, names=[*_ENVELOPE_NAMES, *names]))
            start += b.num_rows
        return out

    def _parse_pending_locked(self) -> None:
        """Parse the batches flushed without their data columns, in runs of <= _RUN_ROWS."""
        out: list[pa.RecordBatch] = []
        run: list[pa.RecordBatch] = []
        rows = 0
        for batch, done in zip(self._batches, self._parsed, strict=True):
            if not done:
                if rows + batch.num_rows > _RUN_ROWS and run:
                    out += self._parse_run(run)
                    run, rows = [], 0
                run.append(batch)
                rows += batch.num_rows
                continue
            if run:
                out += self._parse_run(run)
                run, rows = [], 0
            out.append(batch)
        if run:
            out += self._parse_run(run)
        self._batches = out
        self._parsed = [True] * len(out)

    def _trim(self) -> None:
        if self.max_rows is None:
            return
        excess = self._kept - self.max_rows
        while excess > 0 and self._batches:
            first = self._batches[0]
            if first.num_rows <= excess:
                self._batches.pop(0)
                self._parsed.pop(0)
                excess -= first.num_rows
                self._kept -= first.num_rows
            else:
                self._batches[0] = first.slice(excess)
                self._kept -= excess
                excess = 0

    def _schema(self) -> pa.Schema:
        return pa.schema(list(ENVELOPE) + [pa.field(k, t) for k, t in self._types.items()])

    def _conformed(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        if batch.schema == schema:
            return batch
        columns = []
        for field in schema:
            i = batch.schema.get_field_index(field.name)
            if i < 0:
                columns.append(pa.nulls(batch.num_rows, field.type))
            else:
                columns.append(conform(batch.column(i), field.type))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _notify(self, batch: pa.RecordBatch) -> None:
        callback = self.on_batch
        if callback is not None:
            with self._lock:
                schema = self._schema()
            callback(to_frame(pa.Table.from_batches([self._conformed(batch, schema)])))

    def since(self, seen: int) -> tuple[int, list[pa.RecordBatch]]:
        """The rows flushed after the first `seen` ever flushed, as Arrow batches (the
        envelope columns, `data` raw; rows `max_rows` dropped are skipped), and the new count.
        A live view takes new rows in bulk this way without making the batcher parse each
        batch (`on_batch` does) or build a whole frame (`.df` does)."""
        with self._lock:
            pos, out = self._flushed, []
            for batch in reversed(self._batches):
                if pos <= seen:
                    break
                pos -= batch.num_rows
                envelope = batch.select(range(len(_ENVELOPE_NAMES)))
                out.append(envelope.slice(max(seen - pos, 0)))
            return self._flushed, out[::-1]

    @property
    def df(self) -> pd.DataFrame:
        """Every row kept (pending rows are flushed first), as one DataFrame; cached until
        the next flush. Do not mutate it: copy it first."""
        self.flush()
        with self._lock:
            if self._frame is None:
                self._parse_pending_locked()
                schema = self._schema()
                batches = [self._conformed(b, schema) for b in self._batches]
                self._batches = batches  # conform once, not at every rebuild
                self._frame = to_frame(pa.Table.from_batches(batches, schema=schema))
            return self._frame

    def events(self) -> list[Event]:
        """Every row kept (flushed and pending, the newest `max_rows`), as `Event`s rebuilt
        from the columns. The batcher keeps no Event objects past a flush: millions of them
        alive would make each full garbage collection of the process pause for 100s of ms."""
        with self._lock:
            batches = list(self._batches)
            pending = _rebuild(*(list(c) for c in self._columns)) + self._pending
        out: list[Event] = []
        for batch in batches:  # envelope columns: time, event, id, retry, data
            kinds, ids, retries, data = (batch.column(i).to_pylist() for i in (1, 2, 3, 4))
            out += _rebuild(kinds, data, ids, retries)
        out += pending
        if self.max_rows is not None and len(out) > self.max_rows:
            del out[: len(out) - self.max_rows]
        return out

    @property
    def rows(self) -> int:
        """Rows `.df` would have now (kept rows plus pending, capped by `max_rows`)."""
        with self._lock:
            total = self._kept + self._npending
        return total if self.max_rows is None else min(total, self.max_rows)

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"DataFrameBatcher(rows={self.rows}, batches={len(self._batches)})"


_now = time.time
_new = tuple.__new__


def _rebuild(kinds: list[Any], data: list[Any], ids: list[Any], retries: list[Any]) -> list[Event]:
    """Events from columns, built in C (`tuple.__new__`, as the parser does)."""
    rows = zip(kinds, data, ids, retries, strict=True)
    return list(map(_new, repeat(Event, len(kinds)), rows))


_mono = time.monotonic
