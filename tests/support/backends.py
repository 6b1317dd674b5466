"""Fixtures for the hardening tests: a live server with the fake engines on SQLite and on
PostgreSQL (a throwaway cluster; skipped when none can be had), and helpers to read its state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer, run_server
from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
    run_blocking,
)
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as reason:
            pytest.skip(str(reason))
        yield url


def database_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    """None (SQLite in the data dir) or a new PostgreSQL database, dropped afterwards."""
    if backend == "sqlite":
        yield None
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = run_blocking(create_database(server))
    try:
        yield url
    finally:
        run_blocking(drop_database(server, url))


def backend_server(
    request: pytest.FixtureRequest, tmp_path: Path, **settings: Any
) -> Iterator[LiveServer]:
    """A live server with the fake engines on the backend ``request.param`` names."""
    for url in database_url(request, request.param):
        config = Settings(
            data_dir=tmp_path / "data",
            models_dir=tmp_path / "models",
            host="127.0.0.1",
            port=0,
            database_url=url,
            **settings,
        )
        with run_server(config, [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()]) as server:
            yield server


def file_count(client: httpx.Client) -> int:
    listed = client.get("/v1/files")
    assert listed.status_code == 200, listed.text
    return int(listed.json()["total"])


def custom_voice_count(client: httpx.Client) -> int:
    listed = client.get("/v1/audio/voices", params={"type": "custom"})
    assert listed.status_code == 200, listed.text
    return int(listed.json()["total"])


def assert_mistral_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["object"] == "error" and body["message"], body
    assert "Traceback" not in response.text
    return body
