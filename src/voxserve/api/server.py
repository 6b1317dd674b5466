"""Runs the app under uvicorn with voxserve's shutdown sequence.

On SIGTERM (or the first Ctrl-C):

1. ``/ready`` answers 503 (``draining``) at once;
2. after ``shutdown_drain_seconds`` (default 0) the server stops accepting connections;
3. in-flight requests (a streaming speech, an upload) finish, for up to ``shutdown_seconds``
   (default 30); what is still running then is cancelled (its credits refunded as for a
   client that hung up);
4. open realtime WebSockets are closed with 1012 (service restart) as accepting stops; each
   session's loop sees the disconnect, records its usage and ends;
5. the lifespan closes the services (engines, storage, trace export) and the process exits 0.

A second signal stops at once (uvicorn's forced exit).
"""

from __future__ import annotations

import logging
import math
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voxserve.api.health import Draining
from voxserve.settings import Settings

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose first exit signal turns ``/ready`` false before anything else."""

    def __init__(self, config: uvicorn.Config, *, draining: Draining, drain_seconds: float):
        super().__init__(config)
        self._draining = draining
        self._drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining.started:
            super().handle_exit(sig, frame)  # a second signal: uvicorn forces the exit
            self.force_exit = True
            return
        self._draining.begin()
        log.info(
            "shutting down: /ready answers 503; accepting stops in %.1f s, in-flight requests "
            "get up to %.0f s",
            self._drain_seconds,
            self.config.timeout_graceful_shutdown or 0,
        )
        if self._drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        timer = threading.Timer(self._drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve ``app`` on ``settings.host``/``port`` until a signal ends it (see module doc)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_seconds),
    )
    GracefulServer(
        config, draining=app.state.draining, drain_seconds=settings.shutdown_drain_seconds
    ).run()
