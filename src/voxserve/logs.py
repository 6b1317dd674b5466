"""Logging setup: text or JSON lines, every record carrying the current request id."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import queue
import sys
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    """Log to stderr from a thread of its own: a record is formatted where it is logged (with
    its request id) and only queued there, so the event loop never waits on a slow stderr (a
    full pipe to journald or a container runtime blocks the write; #14 item 5)."""
    queued = QueueHandler(queue.SimpleQueue())
    queued.addFilter(RequestIdFilter())
    if json_lines:
        queued.setFormatter(JsonFormatter())
    else:
        queued.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter("%(message)s"))  # the queued record is the line
    _stop_listener()
    root = logging.getLogger()
    root.handlers[:] = [queued]
    root.setLevel(level.upper())
    # httpx logs every request at INFO (remote engine calls, pool health checks): noise at our INFO.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
    listener = QueueListener(queued.queue, writer)
    listener.start()
    _listeners.append(listener)


_listeners: list[QueueListener] = []
"""The running listener (one at most), stopped with its queue written out at exit or when
logging is configured again."""


def _stop_listener() -> None:
    while _listeners:
        _listeners.pop().stop()


atexit.register(_stop_listener)
