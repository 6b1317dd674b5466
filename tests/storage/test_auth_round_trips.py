"""Authentication costs one database round trip per request, on every backend (#14 item 5):
every request asks, so each extra transaction is event-loop work under load. Nothing is cached,
so a revocation is seen by the very next request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event

from voxserve.core.auth import LOCAL_OWNER_ID, AuthService
from voxserve.errors import Unauthorized
from voxserve.storage.database import Database, create_engine
from voxserve.storage.migrate import migrate_engine
from voxserve.storage.sql_keys import SqlKeyRepository


@dataclass
class Trips:
    """Transactions begun and SELECT statements sent since the last ``reset``."""

    transactions: int = 0
    selects: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.transactions, self.selects = 0, []


@dataclass
class Counted:
    keys: SqlKeyRepository
    trips: Trips


@pytest.fixture
async def counted(database_url: str) -> AsyncIterator[Counted]:
    engine = create_engine(database_url)
    await migrate_engine(engine)
    trips = Trips()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(_connection: Any) -> None:
        trips.transactions += 1

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _execute(*args: Any) -> None:
        statement: str = args[2]
        if statement.lstrip().upper().startswith("SELECT"):
            trips.selects.append(statement)

    try:
        yield Counted(SqlKeyRepository(Database(engine)), trips)
    finally:
        await engine.dispose()


def auth(keys: SqlKeyRepository) -> AuthService:
    return AuthService(keys, open_when_keyless=True)


async def test_a_valid_key_costs_one_round_trip(counted: Counted) -> None:
    service = auth(counted.keys)
    new = await service.create_key("alice")
    counted.trips.reset()

    principal = await service.principal(new.secret)

    assert principal.key_id == new.key.id
    assert (counted.trips.transactions, len(counted.trips.selects)) == (1, 1)


async def test_a_revoked_key_costs_one_round_trip_and_is_refused_at_once(
    counted: Counted,
) -> None:
    service = auth(counted.keys)
    new = await service.create_key("alice")
    await service.principal(new.secret)
    await service.revoke_key(new.key.id)
    counted.trips.reset()

    with pytest.raises(Unauthorized, match="revoked"):
        await service.principal(new.secret)

    assert (counted.trips.transactions, len(counted.trips.selects)) == (1, 1)


async def test_keyless_mode_costs_one_round_trip(counted: Counted) -> None:
    service = auth(counted.keys)
    first = await service.principal(None)  # creates the local owner
    counted.trips.reset()

    again = await service.principal(None)
    with_sdk_key = await service.principal("sk-an-sdk-insists-on-a-key")

    assert first.owner.id == again.owner.id == with_sdk_key.owner.id == LOCAL_OWNER_ID
    # One for the bare request; two for the one with a key (is it a key? then keyless state).
    assert (counted.trips.transactions, len(counted.trips.selects)) == (3, 3)


async def test_keyless_mode_closes_at_the_first_key(counted: Counted) -> None:
    service = auth(counted.keys)
    await service.principal(None)
    await service.create_key("alice")

    with pytest.raises(Unauthorized, match="Missing API key"):
        await service.principal(None)
