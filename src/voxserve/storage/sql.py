"""SQL storage: ``open_storage`` builds the SQL repositories and the blob store (the local one
unless an open one is given).

The engine set-up lives in ``database``; each repository in ``sql_<area>``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from voxserve.offload import run_in_thread
from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.database import Database, create_engine
from voxserve.storage.locks import LocalLocks, PostgresLocks
from voxserve.storage.migrate import migrate_engine
from voxserve.storage.protocol import BlobStore, Locks, Storage
from voxserve.storage.secrets import SqlSecretRepository
from voxserve.storage.sql_batch import SqlBatchRepository
from voxserve.storage.sql_files import SqlFileRepository
from voxserve.storage.sql_keys import SqlKeyRepository
from voxserve.storage.sql_sessions import SqlSessionRepository
from voxserve.storage.sql_usage import SqlUsageRepository
from voxserve.storage.sql_voices import SqlVoiceRepository


@asynccontextmanager
async def open_storage(
    database_url: str, blob_dir: Path, *, blobs: BlobStore | None = None
) -> AsyncIterator[Storage]:
    """Migrate the database to the newest schema and hand out the repositories and blob store.

    Args:
        database_url: ``sqlite+aiosqlite:///path/to.db`` or ``postgresql+asyncpg://...``.
        blob_dir: folder of the local blob store (created when missing).
        blobs: an open blob store to use instead (S3: ``storage.blobs.open_blob_store``);
            ``blob_dir`` is then not touched.

    The engine's connections are closed when the context ends.
    """
    engine = create_engine(database_url)
    try:
        await migrate_engine(engine)
        if blobs is None:
            await run_in_thread(blob_dir.mkdir, parents=True, exist_ok=True)
            blobs = LocalBlobStore(blob_dir)
        db = Database(engine)
        locks: Locks = PostgresLocks(engine) if db.dialect == "postgresql" else LocalLocks()
        yield Storage(
            keys=SqlKeyRepository(db),
            sessions=SqlSessionRepository(db),
            voices=SqlVoiceRepository(db),
            files=SqlFileRepository(db),
            usage=SqlUsageRepository(db),
            blobs=blobs,
            secrets=SqlSecretRepository(db),
            locks=locks,
            batches=SqlBatchRepository(db) if db.dialect == "postgresql" else None,
        )
    finally:
        await engine.dispose()
