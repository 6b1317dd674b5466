"""Server-wide secrets in the database, and the URL-signing key voxserve takes from them.

The key lives in the database so that every replica signs and checks URLs alike: it is created
once (``INSERT ... ON CONFLICT DO NOTHING``, then read back, so replicas starting together all
get the first one stored). An install that kept it in ``<data_dir>/secret.key`` has that key
adopted on its first start with this storage, so URLs signed before keep working.
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from voxserve.offload import run_in_thread
from voxserve.storage.database import Database, dialect_insert
from voxserve.storage.protocol import SecretRepository
from voxserve.storage.tables import SecretRow

SIGNING_KEY = "url-signing-key"
"""Name of the HMAC key for signed URLs and browser tokens."""
LEGACY_KEY_FILE = "secret.key"
"""Where voxserve kept the key in the data folder before it moved to the database."""


class SqlSecretRepository:
    """``SecretRepository`` over SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_or_create(self, name: str, value: str) -> str:
        statement = (
            dialect_insert(self._db.dialect, SecretRow)
            .values(name=name, value=value, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=[SecretRow.name])
        )
        async with self._db.write() as session:
            await session.execute(statement)
            stored = await session.scalar(select(SecretRow.value).where(SecretRow.name == name))
        assert stored is not None  # inserted, or kept by whoever inserted first
        return stored


class MemorySecretRepository:
    """``SecretRepository`` in a dict (tests)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()

    async def get_or_create(self, name: str, value: str) -> str:
        with self._lock:
            return self._values.setdefault(name, value)


async def signing_key(
    repository: SecretRepository, configured: str | None, data_dir: Path
) -> bytes:
    """The HMAC key: ``configured`` (``VOXSERVE_SECRET_KEY``) when set, else the database's,
    created on first use from ``<data_dir>/secret.key`` when an older install left one, else
    at random."""
    if configured:
        return configured.encode()
    legacy = await run_in_thread(_read_legacy_key, data_dir / LEGACY_KEY_FILE)
    value = await repository.get_or_create(SIGNING_KEY, legacy or secrets.token_hex(32))
    return value.encode()


def _read_legacy_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
