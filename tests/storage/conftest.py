"""Storage fixtures: every ``storage`` test runs on SQLite and on PostgreSQL.

``postgres_server_url`` (session) and ``postgres_url`` (a fresh database per test) are thin
wrappers over ``tests.support.postgres``; they can move to ``tests/conftest.py`` unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.postgres import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
)
from voxserve.storage.protocol import Owner, Storage
from voxserve.storage.sql import open_storage

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session (skips when none can be had)."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as reason:
            pytest.skip(str(reason))
        yield url


@pytest.fixture
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = await create_database(postgres_server_url)
    yield url
    await drop_database(postgres_server_url, url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'voxserve.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def storage(database_url: str, tmp_path: Path) -> AsyncIterator[Storage]:
    async with open_storage(database_url, tmp_path / "blobs") as opened:
        yield opened


@pytest.fixture
async def owner(storage: Storage) -> Owner:
    return await storage.keys.create_owner("alice")


@pytest.fixture
async def other_owner(storage: Storage) -> Owner:
    return await storage.keys.create_owner("bob")
