"""In-memory storage for tests: every repository of ``storage.protocol`` and a blob store, in
dicts, with no database, no migrations and no disk.

Shipped in the package beside the engine fakes (``engines/fake.py``), so that tests hand it to the
composition root (``open_services(settings, storage=...)``, ``create_app(..., storage=...)``)
instead of patching. It keeps the contracts of the SQL repositories, and the storage contract
tests run against it too:

- objects of another owner are not found; deleted voices and files are invisible to every read
  but ``due_for_purge``; timestamps come back as aware UTC datetimes, naive ones are refused;
- the voice limit holds under concurrent creates and credits never go negative under concurrent
  reservations: each method's check-and-write runs under one lock shared by all repositories
  (a ``threading.Lock``, so a storage may also be shared with a server running in another thread);
- each method first yields to the event loop, as a database round trip would, so concurrent
  callers really interleave.

It lives in one process and is gone when the object is: not for serving.
"""

from __future__ import annotations

import builtins
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from voxserve.errors import Conflict
from voxserve.storage.blobs_memory import MemoryBlobStore
from voxserve.storage.locks import LocalLocks
from voxserve.storage.memory_sessions import MemorySessionRepository
from voxserve.storage.memory_state import MemoryState, utc, utc_fields
from voxserve.storage.memory_usage import MemoryUsageRepository
from voxserve.storage.memory_voices import MemoryVoiceRepository
from voxserve.storage.protocol import ApiKey, FileRecord, KeylessState, Owner, Storage
from voxserve.storage.secrets import MemorySecretRepository

__all__ = [
    "MemoryBlobStore",
    "MemoryFileRepository",
    "MemoryKeyRepository",
    "MemorySessionRepository",
    "MemoryUsageRepository",
    "MemoryVoiceRepository",
    "create_memory_storage",
    "open_memory_storage",
]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class MemoryKeyRepository:
    """``KeyRepository`` in memory. Revoked keys are kept, as in SQL."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def create_owner(self, name: str, credits: int | None = None) -> Owner:
        owner = Owner(id=_new_id("owner"), name=name, created_at=datetime.now(UTC), credits=credits)
        await self._state.turn()
        with self._state.lock:
            self._state.owners[owner.id] = owner
        return owner

    async def get_owner(self, owner_id: str) -> Owner | None:
        with self._state.lock:
            return self._state.owners.get(owner_id)

    async def get_or_create_owner(self, owner_id: str, name: str) -> Owner:
        await self._state.turn()
        with self._state.lock:
            found = self._state.owners.get(owner_id)
            if found is None:
                found = Owner(id=owner_id, name=name, created_at=datetime.now(UTC))
                self._state.owners[owner_id] = found
            return found

    async def list_owners(self) -> builtins.list[Owner]:
        with self._state.lock:
            owners = list(self._state.owners.values())
        return sorted(owners, key=lambda owner: (owner.created_at, owner.id))

    async def find_owners_by_name(self, name: str) -> builtins.list[Owner]:
        return [owner for owner in await self.list_owners() if owner.name == name]

    async def add_credits(self, owner_id: str, amount: int) -> Owner | None:
        await self._state.turn()
        with self._state.lock:
            found = self._state.owners.get(owner_id)
            if found is None:
                return None
            balance = max((found.credits or 0) + amount, 0)
            found = self._state.owners[owner_id] = dataclasses.replace(found, credits=balance)
            return found

    async def create_key(
        self, owner_id: str, name: str, key_hash: str, prefix: str, *, admin: bool = False
    ) -> ApiKey:
        """Raises ValueError for an unknown owner or a hash that is already stored."""
        key = ApiKey(
            _new_id("key"), owner_id, name, prefix, created_at=datetime.now(UTC), admin=admin
        )
        await self._state.turn()
        with self._state.lock:
            if owner_id not in self._state.owners:
                raise ValueError(f"unknown owner {owner_id!r}: create the owner first")
            if any(stored == key_hash for _, stored in self._state.keys.values()):
                raise ValueError("a key with this hash exists")
            self._state.keys[key.id] = (key, key_hash)
        return key

    async def find_by_hash(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        with self._state.lock:
            for key, stored in self._state.keys.values():
                if stored == key_hash and key.revoked_at is None:
                    return key, self._state.owners[key.owner_id]
        return None

    async def find_key(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        with self._state.lock:
            for key, stored in self._state.keys.values():
                if stored == key_hash:
                    return key, self._state.owners[key.owner_id]
        return None

    async def list_keys(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._state.lock:
            keys = [key for key, _ in self._state.keys.values()]
        return sorted(keys, key=lambda key: (key.created_at, key.id))

    async def revoke_key(self, key_id: str) -> bool:
        await self._state.turn()
        with self._state.lock:
            found = self._state.keys.get(key_id)
            if found is None or found[0].revoked_at is not None:
                return False
            revoked = dataclasses.replace(found[0], revoked_at=datetime.now(UTC))
            self._state.keys[key_id] = (revoked, found[1])
            return True

    async def count_active_keys(self) -> int:
        with self._state.lock:
            return sum(key.revoked_at is None for key, _ in self._state.keys.values())

    async def ever_created(self) -> bool:
        with self._state.lock:
            return bool(self._state.keys)

    async def keyless_state(self, owner_id: str) -> KeylessState:
        with self._state.lock:
            keys = [key for key, _ in self._state.keys.values()]
            owner = self._state.owners.get(owner_id)
        return KeylessState(any(k.revoked_at is None for k in keys), bool(keys), owner)


class MemoryFileRepository:
    """``FileRepository`` in memory. Deleted files are invisible to ``get`` and ``list``."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def create(self, record: FileRecord) -> FileRecord:
        """Raises Conflict when a file with this id exists (also a deleted one)."""
        stored = utc_fields(record)
        await self._state.turn()
        with self._state.lock:
            if record.id in self._state.files:
                raise Conflict(f"File '{record.id}' already exists.")
            self._state.files[record.id] = stored
        return stored

    async def get(self, owner_id: str, file_id: str) -> FileRecord | None:
        found = await self.get_by_id(file_id)
        return found if found is not None and found.owner_id == owner_id else None

    async def get_by_id(self, file_id: str) -> FileRecord | None:
        with self._state.lock:
            found = self._state.files.get(file_id)
        return found if found is not None and found.deleted_at is None else None

    async def list(
        self, owner_id: str, *, offset: int, limit: int, purpose: str | None = None
    ) -> tuple[builtins.list[FileRecord], int]:
        """A page of the owner's files, newest first, and how many there are in all."""
        with self._state.lock:
            rows = [
                f
                for f in self._state.files.values()
                if f.owner_id == owner_id
                and f.deleted_at is None
                and (purpose is None or f.purpose == purpose)
            ]
        rows.sort(key=lambda f: (f.created_at, f.id), reverse=True)
        return rows[offset : offset + max(limit, 0)], len(rows)

    async def mark_deleted(self, owner_id: str, file_id: str, *, at: datetime) -> FileRecord | None:
        deleted_at = utc(at)
        await self._state.turn()
        with self._state.lock:
            found = self._state.files.get(file_id)
            if found is None or found.owner_id != owner_id or found.deleted_at is not None:
                return None
            found = dataclasses.replace(found, deleted_at=deleted_at)
            self._state.files[file_id] = found
            return found

    async def due_for_purge(self, now: datetime) -> builtins.list[FileRecord]:
        """Deleted files, and files whose ``expires_at`` has passed, oldest first."""
        with self._state.lock:
            due = [
                f
                for f in self._state.files.values()
                if f.deleted_at is not None or (f.expires_at is not None and f.expires_at <= now)
            ]
        return sorted(due, key=lambda f: (f.created_at, f.id))

    async def purge(self, file_id: str) -> None:
        with self._state.lock:
            self._state.files.pop(file_id, None)

    async def referenced_blob_keys(self) -> set[str]:
        with self._state.lock:
            return {f.blob_key for f in self._state.files.values()}


def create_memory_storage() -> Storage:
    """A new, empty in-memory ``Storage`` (every repository and the blob store)."""
    state = MemoryState()
    return Storage(
        keys=MemoryKeyRepository(state),
        sessions=MemorySessionRepository(state),
        voices=MemoryVoiceRepository(state),
        files=MemoryFileRepository(state),
        usage=MemoryUsageRepository(state),
        blobs=MemoryBlobStore(),
        secrets=MemorySecretRepository(),
        locks=LocalLocks(),
    )


@asynccontextmanager
async def open_memory_storage() -> AsyncIterator[Storage]:
    """Like ``storage.sql.open_storage``, for tests: a new, empty in-memory storage."""
    yield create_memory_storage()
