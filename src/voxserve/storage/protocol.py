"""Storage protocols and the records they hold.

Repositories are async; each method is one transaction. Records are plain frozen dataclasses so
the core never sees SQLAlchemy rows. Timestamps are timezone-aware UTC. Objects of another owner
are simply not found (``None``), never an error that leaks their existence.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from voxserve.storage.batches import BatchRepository


@dataclass(frozen=True)
class Owner:
    id: str
    name: str
    created_at: datetime
    credits: int | None = None
    """Remaining credit balance; None is unlimited."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    owner_id: str
    name: str
    prefix: str
    """First characters of the key, to tell keys apart in listings."""
    created_at: datetime
    revoked_at: datetime | None = None
    admin: bool = False
    """An operator key (``voxserve keys create --admin``): sees every owner and key."""


@dataclass(frozen=True)
class KeylessState:
    """What keyless mode depends on, read in one round trip (``KeyRepository.keyless_state``)."""

    any_active: bool
    """Some key is active (not revoked)."""
    any_ever: bool
    """Some key was ever created (revoked keys are kept)."""
    owner: Owner | None
    """The owner keyless requests run as; None until it is first created."""


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: the cookie carries a random token, only its hash is stored."""

    id: str
    """SHA-256 of the cookie's token."""
    owner_id: str
    key_id: str
    """The key that signed in; revoking it ends the session."""
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class VoiceSample:
    """A stored sample of a voice; ``emotion`` None is the main sample."""

    blob_key: str
    seconds: float
    emotion: str | None = None


@dataclass(frozen=True)
class VoiceRecord:
    id: str
    owner_id: str
    name: str
    created_at: datetime
    samples: tuple[VoiceSample, ...]
    """The main sample first, then emotion variants."""
    slug: str | None = None
    languages: tuple[str, ...] = ()
    gender: str | None = None
    age: int | None = None
    tags: tuple[str, ...] | None = None
    color: str | None = None
    description: str | None = None
    retention_notice: int = 30
    trimmed_seconds: float | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    purge_after: datetime | None = None

    @property
    def main_sample(self) -> VoiceSample:
        return next(s for s in self.samples if s.emotion is None)

    def sample_for(self, emotion: str | None) -> VoiceSample:
        """The sample for an emotion, else the main one."""
        if emotion:
            for sample in self.samples:
                if sample.emotion == emotion:
                    return sample
        return self.main_sample


@dataclass(frozen=True)
class VoiceQuery:
    """Filters for listing custom voices. Empty tuples mean no filter."""

    text: str | None = None
    """Case-insensitive match on the name (and description and tags when ``text_in_details``)."""
    text_in_details: bool = False
    genders: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileRecord:
    id: str
    owner_id: str
    filename: str
    bytes: int
    purpose: str
    blob_key: str
    content_type: str | None
    created_at: datetime
    expires_at: datetime | None = None
    """Set for files that the server removes by itself (stored generations)."""
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class UsageRecord:
    owner_id: str
    endpoint: str
    """The operation, e.g. ``speech``, ``transcription``, ``chat``."""
    engine: str | None
    status: int
    created_at: datetime
    characters: int = 0
    audio_seconds: float = 0.0
    tokens: int = 0
    credits: int = 0
    id: int | None = None


@dataclass(frozen=True)
class UsageTotals:
    period_start: datetime | None
    """Start of the period (None for the overall total)."""
    requests: int
    characters: int
    audio_seconds: float
    tokens: int
    credits: int

    @classmethod
    def total_of(cls, periods: Sequence[UsageTotals]) -> UsageTotals:
        """The overall total (``period_start`` None) of some periods' totals."""
        return cls(
            None,
            sum(p.requests for p in periods),
            sum(p.characters for p in periods),
            sum(p.audio_seconds for p in periods),
            sum(p.tokens for p in periods),
            sum(p.credits for p in periods),
        )


@dataclass(frozen=True)
class UsageSnapshot:
    """An owner's balance and usage read in one transaction: every request settled in the
    records has its charge and refund in the balance, and no other request has."""

    balance: int | None
    """Credits left; None is unlimited."""
    overall: UsageTotals
    periods: list[UsageTotals]
    records: list[UsageRecord]
    """The newest first."""


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: datetime


class KeyRepository(Protocol):
    """Owners and their API keys. Only key hashes are stored."""

    async def create_owner(self, name: str, credits: int | None = None) -> Owner: ...

    async def get_owner(self, owner_id: str) -> Owner | None: ...

    async def get_or_create_owner(self, owner_id: str, name: str) -> Owner:
        """The owner with this id, created if missing (for the loopback local owner)."""

    async def create_key(
        self, owner_id: str, name: str, key_hash: str, prefix: str, *, admin: bool = False
    ) -> ApiKey: ...

    async def list_owners(self) -> list[Owner]:
        """Every owner, oldest first."""

    async def find_owners_by_name(self, name: str) -> list[Owner]:
        """Owners called exactly ``name`` (names are not unique)."""

    async def add_credits(self, owner_id: str, amount: int) -> Owner | None:
        """Add ``amount`` (may be negative, never below 0) to the balance; an unlimited owner
        (``credits`` None) gets a balance of ``amount``. None when no owner has this id."""

    async def find_by_hash(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        """The active (not revoked) key with this hash and its owner."""

    async def find_key(self, key_hash: str) -> tuple[ApiKey, Owner] | None:
        """The key with this hash, revoked or not (``revoked_at`` tells), and its owner, in one
        round trip: a revoked key is refused (401) even where keyless requests are allowed."""

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str) -> bool:
        """Revoke; False when no active key has this id."""

    async def count_active_keys(self) -> int: ...

    async def ever_created(self) -> bool:
        """True once any key has been created, revoked ones included (revoked keys are kept):
        revoking the last key must not reopen keyless mode by itself."""

    async def keyless_state(self, owner_id: str) -> KeylessState:
        """Whether any key is active, whether any ever existed, and the owner ``owner_id``, in
        one round trip (every keyless request asks)."""


class SessionRepository(Protocol):
    """Web app sign-in sessions, by token hash. Expired and revoked ones are kept until purged."""

    async def create(self, session: WebSession) -> WebSession: ...

    async def find_live(
        self, session_id: str, now: datetime
    ) -> tuple[WebSession, ApiKey, Owner] | None:
        """The session with this id, its key and owner, if it is not revoked, not expired and
        its key is active."""

    async def revoke(self, session_id: str, at: datetime) -> bool:
        """End the session; False when no live session has this id."""

    async def purge_expired(self, before: datetime) -> int:
        """Remove sessions that expired or were revoked before ``before``; how many."""


class VoiceRepository(Protocol):
    """Custom voices. Deleted voices (``deleted_at`` set) are invisible to every read but
    ``due_for_purge``."""

    async def create(self, voice: VoiceRecord, *, max_per_owner: int) -> VoiceRecord:
        """Insert, holding ``max_per_owner`` under concurrent creates in any number of processes.

        Raises:
            LimitExceeded: the owner already has ``max_per_owner`` live voices.
        """

    async def get(self, owner_id: str, voice_id: str) -> VoiceRecord | None: ...

    async def list(
        self, owner_id: str, query: VoiceQuery, *, offset: int, limit: int
    ) -> tuple[list[VoiceRecord], int]:
        """A page of live voices, newest first, and the total that match."""

    async def count(self, owner_id: str) -> int: ...

    async def update(
        self, owner_id: str, voice_id: str, changes: Mapping[str, Any]
    ) -> VoiceRecord | None:
        """Set the given fields (names as on ``VoiceRecord``); None if not found."""

    async def set_sample(self, owner_id: str, voice_id: str, sample: VoiceSample) -> bool:
        """Add or replace the sample for ``sample.emotion``; False if the voice is gone."""

    async def mark_deleted(
        self, owner_id: str, voice_id: str, *, at: datetime, purge_after: datetime
    ) -> VoiceRecord | None:
        """Hide the voice now; its samples go at ``purge_after``. None if not found."""

    async def due_for_purge(self, now: datetime) -> builtins.list[VoiceRecord]: ...

    async def purge(self, voice_id: str) -> None:
        """Remove the row for good (after its blobs are gone)."""

    async def referenced_blob_keys(self) -> set[str]:
        """Every blob key a voice row (live or deleted) points at."""


class FileRepository(Protocol):
    async def create(self, record: FileRecord) -> FileRecord: ...

    async def get(self, owner_id: str, file_id: str) -> FileRecord | None: ...

    async def get_by_id(self, file_id: str) -> FileRecord | None:
        """Any owner's live file: only for signed URLs, whose signature proves access."""

    async def list(
        self, owner_id: str, *, offset: int, limit: int, purpose: str | None = None
    ) -> tuple[builtins.list[FileRecord], int]: ...

    async def mark_deleted(
        self, owner_id: str, file_id: str, *, at: datetime
    ) -> FileRecord | None: ...

    async def due_for_purge(self, now: datetime) -> builtins.list[FileRecord]:
        """Deleted files, and files whose ``expires_at`` has passed."""

    async def purge(self, file_id: str) -> None: ...

    async def referenced_blob_keys(self) -> set[str]: ...


class UsageRepository(Protocol):
    async def reserve_credits(self, owner_id: str, amount: int) -> bool:
        """Atomically take ``amount`` credits; True when the balance allowed it or is unlimited."""

    async def refund_credits(self, owner_id: str, amount: int) -> None: ...

    async def record(self, record: UsageRecord, *, refund: int = 0) -> None:
        """Store ``record`` and give ``refund`` credits back to its owner in one transaction, so
        no reader ever sees a request's record without its refund (or the refund without it)."""

    async def totals(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str | None = None,
    ) -> list[UsageTotals]:
        """Totals overall (``period`` None) or per ``day``/``month``."""

    async def records(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[UsageRecord]:
        """The newest ``limit`` records from ``since`` (inclusive) to ``until`` (exclusive),
        newest first."""

    async def snapshot(
        self,
        owner_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "day",
        limit: int = 100,
    ) -> UsageSnapshot | None:
        """``totals`` (overall and per ``period``), ``records`` and the balance, all as of one
        moment; None when no owner has this id."""


class BlobStoreUnavailable(RuntimeError):
    """The configured blob store cannot be reached; the message says which and why."""


CHUNK_SIZE = 1024 * 1024
"""Default chunk size of ``BlobStore.stream``."""


class BlobStore(Protocol):
    """Bytes by key. Writes are atomic: a reader sees the old blob, the new one, or none."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """Raises KeyError when absent."""

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """Store what ``chunks`` yields, for blobs too large to hold in memory (the file and S3
        stores never hold more than one part). Atomic like ``put``: when ``chunks`` raises, or
        the write fails or is cancelled, readers keep seeing the old blob or none."""

    def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The blob in chunks of at most ``chunk_size`` bytes, one version from start to end.

        Raises:
            KeyError: at the first chunk, when absent.
        """

    async def delete(self, key: str) -> None:
        """Idempotent."""

    async def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> AsyncIterator[BlobInfo]:
        """Blobs whose key starts with ``prefix``, sorted by key; never a write in progress."""

    async def remove_stale_temporaries(self, older_than: datetime) -> int:
        """Remove what interrupted writes left behind (a process killed during a write) and
        that was last touched before ``older_than``; returns how many were removed.

        Writes in progress are younger than any sane grace period, so they are never touched.
        """


class SecretRepository(Protocol):
    """Server-wide secrets (the URL-signing key), shared by every replica on the database."""

    async def get_or_create(self, name: str, value: str) -> str:
        """The secret called ``name``; stored as ``value`` first when there is none. Race-safe:
        processes creating it at once all get the one value that was stored first."""


class Locks(Protocol):
    """Locks held across every process that shares this storage (replicas on one database)."""

    def hold(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Try to take the lock called ``name`` without waiting: the block gets True and holds
        it until the block ends, or gets False when another holder has it. A holder that dies
        releases it (its database connection ends)."""


@dataclass(frozen=True)
class Storage:
    """Everything the services persist to, built once by the composition root."""

    keys: KeyRepository
    sessions: SessionRepository
    voices: VoiceRepository
    files: FileRepository
    usage: UsageRepository
    blobs: BlobStore
    secrets: SecretRepository
    locks: Locks
    batches: BatchRepository | None = None
    """Batch jobs: only on PostgreSQL, where their job queue lives (None elsewhere)."""
