"""Locks across the replicas of one database, for work that one replica at a time should do
(the periodic cleanup).

PostgreSQL: a session-level advisory lock on a connection kept for the block, so a replica that
dies releases it with its connection. SQLite and the in-memory storage live on one machine, and
all but one process there is rare (a CLI next to the server): a lock per storage object.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

LOCK_SPACE = 0x766F7873
"""First half of every voxserve advisory lock id ("voxs"); the second is the name's CRC-32."""


def _lock_id(name: str) -> int:
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= 1 << 31 else value  # PostgreSQL's int4 is signed


class PostgresLocks:
    """``Locks`` as PostgreSQL advisory locks."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        key = {"space": LOCK_SPACE, "id": _lock_id(name)}
        async with self._engine.connect() as connection:
            taken = await connection.scalar(text("SELECT pg_try_advisory_lock(:space, :id)"), key)
            try:
                yield bool(taken)
            finally:
                if taken:
                    await self._release(connection, key)

    @staticmethod
    async def _release(connection: AsyncConnection, key: dict[str, int]) -> None:
        try:
            await connection.execute(text("SELECT pg_advisory_unlock(:space, :id)"), key)
        except BaseException:
            # A connection that may still hold the lock must never go back to the pool.
            await connection.invalidate()
            raise


class LocalLocks:
    """``Locks`` within this process (SQLite, in-memory storage)."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[bool]:
        with self._guard:
            taken = name not in self._held
            self._held.add(name)
        try:
            yield taken
        finally:
            if taken:
                with self._guard:
                    self._held.discard(name)
