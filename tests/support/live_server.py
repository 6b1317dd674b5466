"""Runs the real voxserve app under uvicorn on a free loopback port, in a background thread, so
tests can drive it with the official SDKs and raw HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from voxserve.api.app import create_app
from voxserve.engines.registry import Engine
from voxserve.settings import Settings
from voxserve.storage.protocol import Storage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]


@contextmanager
def run_server(
    settings: Settings,
    engines: Sequence[Engine] | None = None,
    *,
    storage: Storage | None = None,
) -> Iterator[LiveServer]:
    """Start the app on ``settings.port`` when it was set (a free one when 0 or left at the
    default 8000, so tests never collide with each other or a running server) and stop it on exit.

    ``storage`` (e.g. ``storage.memory.create_memory_storage()``) replaces the SQL storage the
    settings name; the server thread and the test may both use it (it is thread-safe).
    """
    chosen = "port" in settings.model_fields_set and settings.port
    port = chosen or free_port()
    settings = settings.model_copy(update={"port": port})
    injected = {} if storage is None else {"storage": storage}
    config = uvicorn.Config(
        create_app(settings, engines=engines, **injected),
        host=settings.host,
        port=port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.host}:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("voxserve test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(url, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
