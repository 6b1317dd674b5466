"""The SQL database: engine set-up for SQLite and PostgreSQL, and read/write transactions.

SQLite: WAL (readers never wait for the writer), foreign keys on, a 30 s busy timeout, and write
transactions that start with ``BEGIN IMMEDIATE`` so two writers (also in two processes) serialize
at the start of the transaction instead of failing at its first write. PostgreSQL needs none of
this; repositories lock rows where an invariant spans several statements.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import TableClause, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from voxserve.storage.pool_ping import ping_idle_connections

BUSY_TIMEOUT_MS = 30_000
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
WRITE_OPTION = "voxserve_write"
"""Execution option marking a connection whose transactions will write."""


def dialect_insert(
    dialect: str, table: type[Any] | TableClause
) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` in the dialect's own construct (``dialect``: ``postgresql`` or
    ``sqlite``), for its ON CONFLICT clauses, which the two spell alike."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    Plain ``sqlite://`` and ``postgresql://`` URLs get the async driver. For a SQLite file the
    folder is created when missing.
    """
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        _make_sqlite_folder(url)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    elif "pool_pre_ping" not in kwargs:
        ping_idle_connections(engine)  # a restarted server must not break the pool
    return engine


def async_url(database_url: str) -> URL:
    """The URL with the async driver voxserve uses when it names none."""
    url = make_url(database_url)
    driver = ASYNC_DRIVERS.get(url.drivername)
    return url.set(drivername=driver) if driver else url


def _make_sqlite_folder(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver: SQLAlchemy emits it below, in the mode we choose.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) whose transactions take the write lock up front on SQLite."""
    return engine.execution_options(**{WRITE_OPTION: True})


class Database:
    """Hands out sessions, each inside one transaction (committed on success)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
        # SQLite has one writer at a time: queue this process's writers here, in order, rather
        # than have each poll the busy handler (which backs off up to 100 ms per try).
        self._write_turn = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction."""
        async with self._reads() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that writes; on SQLite it holds the database write lock throughout."""
        async with self._turn(), self._writes() as session, session.begin():
            yield session

    def _turn(self) -> AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else nullcontext()
