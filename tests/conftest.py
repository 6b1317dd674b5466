"""Shared fixtures: settings in a temporary data dir, and a live server with fake engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage
from voxserve.storage.protocol import Storage


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated in a temp dir, with no models folder (fast, offline)."""
    return Settings(
        data_dir=tmp_path / "data", models_dir=tmp_path / "models", host="127.0.0.1", port=0
    )


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine()]


@pytest.fixture
def memory_storage() -> Storage:
    """A new, empty in-memory storage (repositories and blobs): no database, no migrations.
    Pass it to ``open_services``/``create_app``/``run_server`` as ``storage=``."""
    return create_memory_storage()


@pytest.fixture
def live_server(settings: Settings, fake_engines: list[object]) -> Iterator[LiveServer]:
    with run_server(settings, fake_engines) as server:  # type: ignore[arg-type]
        yield server
