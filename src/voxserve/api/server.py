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

import asyncio
import gc
import logging
import math
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from voxserve.api.health import Draining
from voxserve.settings import Settings

log = logging.getLogger(__name__)
STARTUP_FAILURE = 3
"""Exit code of a server whose startup failed (``uvicorn.run``'s)."""
UNWIND_SECONDS = 5.0
"""How long requests cancelled at the deadline may take to unwind before the services close."""


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose first exit signal turns ``/ready`` false before anything else."""

    freeze_after_startup = False
    """Freeze what startup built (``freeze_startup_objects``) once the app has started, before
    the first request (``serve`` does; servers that tests run inside the test process do not)."""

    def __init__(self, config: uvicorn.Config, *, draining: Draining, drain_seconds: float):
        super().__init__(config)
        self._draining = draining
        self._drain_seconds = drain_seconds

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.freeze_after_startup and not self.should_exit:
            freeze_startup_objects()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining.started:
            super().handle_exit(sig, frame)  # a second signal: uvicorn forces the exit
            self.force_exit = True
            return
        self._draining.begin()
        log.info(
            "shutting down: /ready answers 503; accepting stops in %.1f s, in-flight requests "
            "get up to %s s",
            self._drain_seconds,
            self.config.timeout_graceful_shutdown,
        )
        if self._drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        timer = threading.Timer(self._drain_seconds, super().handle_exit, (sig, frame))
        timer.daemon = True
        timer.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn cancels the requests still running at the deadline and goes straight on to
        # the lifespan's shutdown, which closes the services under them: let the cancelled
        # ones unwind first (an engine call in a thread ends its current step, usage is
        # recorded and credits refunded), for a few seconds at most.
        close_services = self.lifespan.shutdown

        async def unwind_then_close() -> None:
            running = [t for t in self.server_state.tasks if not t.done()]
            if running:
                await asyncio.wait(running, timeout=UNWIND_SECONDS)
            await close_services()

        self.lifespan.shutdown = unwind_then_close
        await super().shutdown(sockets)


def graceful_server(app: FastAPI, settings: Settings, **options: Any) -> GracefulServer:
    """A server for ``app`` on ``settings.host``/``port`` with the shutdown sequence of the
    module doc (``options``: more ``uvicorn.Config`` arguments)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_seconds),
        **options,
    )
    draining: Draining = app.state.draining
    return GracefulServer(config, draining=draining, drain_seconds=settings.shutdown_drain_seconds)


def freeze_startup_objects() -> None:
    """Collect, then move every object the collector tracks into its permanent generation
    (``gc.freeze``, the stdlib's way for servers): modules, routes, models and services live
    as long as the process, and a full collection would walk all of them (~170,000) holding the
    GIL and the event loop: 430-680 ms for a fresh app on the loaded 2-core dev machine; the
    server's first one, seconds into serving, held the loop 884 ms there (#14 item 5). Now it
    runs before the first request, and later full collections walk only what was made since."""
    gc.collect()
    gc.freeze()


def serve(app: FastAPI, settings: Settings) -> None:
    """Serve ``app`` until a signal ends it (see the module doc).

    Raises:
        SystemExit: code 3 (uvicorn's own for this) when the server never started: its
            startup failed (logged by uvicorn) or the port was taken.
    """
    server = graceful_server(app, settings, log_config=None, access_log=False)
    server.freeze_after_startup = True
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
