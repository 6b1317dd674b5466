"""Bring a database to the newest schema with Alembic, safely from any number of processes.

The upgrade runs inside one transaction that first takes a database-wide lock: a PostgreSQL
advisory lock, or SQLite's write lock (``BEGIN IMMEDIATE``). A second process starting at the
same time waits for the first one, then finds the schema at head and does nothing. DDL is
transactional on both backends, so a failed upgrade leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from voxserve.storage.database import create_engine, writer

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ADVISORY_LOCK_KEY = 0x766F7873_65727665  # "voxserve": one lock id for every voxserve schema change
_IN_PROCESS = threading.Lock()


def alembic_config() -> Config:
    """An Alembic configuration built in code (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(database_url: str) -> None:
    """Upgrade the database at ``database_url`` to the newest revision (a no-op when current)."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        await migrate_engine(engine)
    finally:
        await engine.dispose()


async def migrate_engine(engine: AsyncEngine) -> None:
    """Upgrade through an existing engine (needed for in-memory SQLite, which lives in its pool)."""
    # Alembic keeps the running migration's context in module globals: one upgrade at a time in
    # this process, whatever the event loop or thread.
    await _acquire(_IN_PROCESS)
    try:
        async with writer(engine).connect() as connection:
            await connection.run_sync(_upgrade_locked)
    finally:
        _IN_PROCESS.release()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None before the first migration)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def _acquire(lock: threading.Lock) -> None:
    # Polling (rare, short waits) keeps the event loop free, works across loops and threads, and
    # cannot leave the lock taken when the waiting task is cancelled.
    while True:
        if lock.acquire(blocking=False):
            return
        await asyncio.sleep(0.01)


def _upgrade_locked(connection: Connection) -> None:
    with connection.begin():
        if connection.dialect.name == "postgresql":
            # Held until the transaction ends, so it is released even if this process dies.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
