"""Alembic environment for voxserve.

``voxserve.storage.migrate`` passes an open connection (already inside a locked transaction) in
``config.attributes["connection"]``; the migrations then run in that transaction. Without one
(the ``alembic`` command line, e.g. to autogenerate a revision) it connects to
``sqlalchemy.url`` itself, with an async engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from voxserve.storage.database import create_engine
from voxserve.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = config.attributes.get("connection")
    if context.is_offline_mode():
        _run_offline()
    elif given is not None:
        _run_migrations(given)
    else:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("set sqlalchemy.url (e.g. alembic -x or alembic.ini) to migrate")
        asyncio.run(_run_with_own_engine(url))


_main()
