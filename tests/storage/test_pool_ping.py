"""Pooled PostgreSQL connections are pinged before use only after being idle a while: a dead
one is replaced without failing the request, a busy pool pays no extra round trip."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from voxserve.storage import pool_ping
from voxserve.storage.database import create_engine

pytestmark = pytest.mark.postgres


def count_pings(engine: Any) -> list[int]:
    pings = [0]
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings[0] += 1
        return bool(ping(dbapi_connection))

    engine.dialect.do_ping = counted
    return pings


async def backend_pid(engine: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_busy_pool_is_not_pinged(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    pings = count_pings(engine)
    try:
        pids = {await backend_pid(engine) for _ in range(20)}
    finally:
        await engine.dispose()

    assert pings[0] == 0
    assert len(pids) == 1  # the same pooled connection each time


async def test_an_idle_connection_that_died_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    pings = count_pings(engine)
    try:
        first = await backend_pid(engine)
        killer = create_engine(postgres_url, pool_pre_ping=False)
        async with killer.connect() as connection:  # as a PostgreSQL restart would
            await connection.execute(text(f"SELECT pg_terminate_backend({first})"))
        await killer.dispose()
        monkeypatch.setattr(pool_ping, "IDLE_BEFORE_PING_SECONDS", 0.0)

        second = await backend_pid(engine)  # no error: the dead one failed its ping
    finally:
        await engine.dispose()

    assert second != first
    assert pings[0] == 1
