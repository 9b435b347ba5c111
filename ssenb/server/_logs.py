"""Server logs kept in memory, never printed: uvicorn's lines would land in whichever cell
happens to be running. `ServerHandle.logs()` reads them back, per server thread.
"""

from __future__ import annotations

import logging
from collections import deque

from .. import _state
from ._response import AbortConnection

__all__ = ["LogBuffer", "install_log_buffer"]

_LOGGERS = ("uvicorn", "ssenb.server")


class LogBuffer(logging.Handler):
    """Keeps the last records of the server loggers in memory, tagged by thread name."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: deque[logging.LogRecord] = deque(maxlen=2000)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _DropAborts(logging.Filter):
    """uvicorn logs a traceback when a producer cuts a connection on purpose: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, AbortConnection)


def install_log_buffer() -> LogBuffer:
    handler = _state.flags.get("log_buffer")
    if not isinstance(handler, LogBuffer):
        handler = LogBuffer()
        _state.flags["log_buffer"] = handler
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if type(h).__name__ == "LogBuffer"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    error_logger = logging.getLogger("uvicorn.error")
    if not any(type(f).__name__ == "_DropAborts" for f in error_logger.filters):
        error_logger.addFilter(_DropAborts())
    return handler
