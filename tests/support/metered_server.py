"""A live server with one key that holds credits, and the usage report once a request (or a
realtime session) has left its record: the harness of the hang-up and charging tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


def serve_with_credits(
    tmp_path: Path, engine: FakeTTSEngine, credits: int
) -> Iterator[tuple[LiveServer, str]]:
    """Yields a live server over ``engine`` (storage under ``tmp_path``) and the secret of a key
    of owner ``alice`` with ``credits``; use it as a fixture (``yield from``)."""
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)

    async def make_key() -> str:
        async with open_services(settings, engines=[engine]) as services:
            return (await services.auth.create_key("alice", credits=credits)).secret

    key = asyncio.run(make_key())
    with run_server(settings, [engine]) as live:
        yield live, key


def settled_usage(live: LiveServer, key: str, what: str = "the request") -> dict[str, Any]:
    """The usage report (``/v1/usage``) once it holds a record; fails after 10 s naming
    ``what`` left none."""
    with live.client(key) as client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            report: dict[str, Any] = client.get("/v1/usage").json()
            if report["records"]:
                return report
            time.sleep(0.05)
    raise AssertionError(f"{what} left no usage record")
