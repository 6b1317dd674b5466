"""Copy one storage (database + blob store) into another: a local install (SQLite + folder) to
PostgreSQL + S3, for ``voxserve migrate-storage``.

Both databases are first brought to the newest schema. Rows go table by table in foreign-key
order, in batches, each ``INSERT ... ON CONFLICT DO NOTHING``, so a rerun after an interruption
copies what is missing and nothing twice; PostgreSQL's id sequences are then moved past the copied
ids. Blobs are streamed (never held whole in memory) and skipped when the target already has the
key with the same size. The copy is verified at the end: every table's row count and every blob
(key and size) must match. A target that holds anything is refused unless ``resume`` is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from voxserve.storage.database import Database, create_engine, dialect_insert
from voxserve.storage.migrate import migrate_engine
from voxserve.storage.protocol import BlobStore
from voxserve.storage.secrets import SqlSecretRepository, signing_key
from voxserve.storage.tables import Base, SecretRow

BATCH = 500
"""Rows per INSERT."""


class TargetNotEmpty(RuntimeError):
    """The target already holds rows or blobs, and ``resume`` was not given."""


@dataclass
class TransferReport:
    """What was copied, and the counts on both sides."""

    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per table: (rows in the source, rows in the target) after the copy."""
    blobs: tuple[int, int] = (0, 0)
    """Blobs in the source, and how many of them the target holds with the same size."""
    blob_bytes: int = 0
    blobs_copied: int = 0
    """Blobs written by this run (the rest were there already)."""
    secrets_kept: tuple[str, ...] = ()
    """Secrets (by name) the target already held with another value, and kept: a target that
    keeps its own URL-signing key does not accept URLs the source signed."""

    @property
    def verified(self) -> bool:
        """Every table and blob of the source is in the target."""
        tables = all(source == target for source, target in self.rows.values())
        return tables and self.blobs[0] == self.blobs[1]


@dataclass(frozen=True)
class Endpoint:
    """One side of the transfer."""

    database_url: str
    blobs: BlobStore | None
    """None: blobs are not copied (both sides use the same store)."""


async def transfer(
    source: Endpoint,
    target: Endpoint,
    *,
    resume: bool = False,
    legacy_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> TransferReport:
    """Copy ``source`` into ``target`` and verify the copy.

    Args:
        source: the storage to copy (left as it is, but for its schema and signing key).
        target: where to copy it.
        resume: go on into a target that is not empty (a rerun after an interruption).
        legacy_dir: a data folder whose ``secret.key`` the source adopts first (see
            ``storage.secrets``), so that URLs it signed keep working on the target.
        progress: called with one line per step.

    Raises:
        TargetNotEmpty: the target holds rows or blobs and ``resume`` is False.
    """
    source_engine = create_engine(source.database_url, poolclass=NullPool)
    target_engine = create_engine(target.database_url, poolclass=NullPool)
    try:
        await migrate_engine(source_engine)
        await migrate_engine(target_engine)
        if legacy_dir is not None:
            await signing_key(SqlSecretRepository(Database(source_engine)), None, legacy_dir)
        if not resume:
            await _refuse_if_not_empty(target_engine, target.blobs)
        report = TransferReport()
        await _copy_rows(source_engine, target_engine, report, progress)
        report.secrets_kept = await _secrets_kept(source_engine, target_engine)
        if source.blobs is not None and target.blobs is not None:
            await _copy_blobs(source.blobs, target.blobs, report, progress)
        return report
    finally:
        await source_engine.dispose()
        await target_engine.dispose()


def _tables() -> list[Table]:
    return list(Base.metadata.sorted_tables)


async def _refuse_if_not_empty(engine: AsyncEngine, blobs: BlobStore | None) -> None:
    async with engine.connect() as connection:
        for table in _tables():
            if await _count(connection, table):
                raise TargetNotEmpty(f"the target database has rows in {table.name}")
    if blobs is not None:
        async for info in blobs.list():
            raise TargetNotEmpty(f"the target blob store is not empty (it holds {info.key})")


async def _count(connection: AsyncConnection, table: Table) -> int:
    return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def _copy_rows(
    source: AsyncEngine,
    target: AsyncEngine,
    report: TransferReport,
    progress: Callable[[str], None],
) -> None:
    async with source.connect() as reading:
        for table in _tables():
            async with target.begin() as writing:
                async for batch in _batches(reading, table):
                    await writing.execute(_insert_ignoring_copies(target, table), batch)
                await _advance_sequences(writing, table)
                copied = await _count(writing, table)
            report.rows[table.name] = (await _count(reading, table), copied)
            progress(f"{table.name}: {report.rows[table.name][0]} rows")


async def _batches(
    connection: AsyncConnection, table: Table
) -> AsyncIterator[list[dict[str, Any]]]:
    ordered = select(table).order_by(*table.primary_key.columns)
    result = await connection.stream(ordered)
    async for rows in result.mappings().partitions(BATCH):
        yield [dict(row) for row in rows]


def _insert_ignoring_copies(engine: AsyncEngine, table: Table) -> Executable:
    return dialect_insert(engine.dialect.name, table).on_conflict_do_nothing()


async def _advance_sequences(connection: AsyncConnection, table: Table) -> None:
    """Ids copied into a PostgreSQL identity column leave its sequence behind: move it on."""
    if connection.dialect.name != "postgresql":
        return
    for column in table.primary_key.columns:
        if column.autoincrement is True:
            statement = text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
            )
            await connection.execute(statement)


async def _secrets_kept(source: AsyncEngine, target: AsyncEngine) -> tuple[str, ...]:
    """Names of the secrets whose target value is not the source's (a copy skips a row the
    target already has)."""
    query = select(SecretRow.name, SecretRow.value)
    async with source.connect() as reading, target.connect() as written:
        theirs = dict((await written.execute(query)).tuples().all())
        return tuple(
            name
            for name, value in (await reading.execute(query)).tuples()
            if theirs.get(name, value) != value
        )


async def _copy_blobs(
    source: BlobStore, target: BlobStore, report: TransferReport, progress: Callable[[str], None]
) -> None:
    present = {info.key: info.size async for info in target.list()}
    count = copied = size = 0
    async for info in source.list():
        count += 1
        size += info.size
        if present.get(info.key) != info.size:
            await target.put_stream(info.key, source.stream(info.key))
            copied += 1
            if copied % 100 == 0:
                progress(f"blobs: {copied} copied")
    after = {info.key: info.size async for info in target.list()}
    matched = 0
    async for info in source.list():
        matched += after.get(info.key) == info.size
    report.blobs, report.blob_bytes, report.blobs_copied = (count, matched), size, copied
    progress(f"blobs: {count} ({size} bytes), {copied} copied by this run")
