"""SQLAlchemy tables (declarative rows) and the explicit conversions from rows to records.

Rows never leave the storage package: repositories turn them into the frozen dataclasses of
``voxserve.storage.protocol``. The Alembic migrations under ``migrations/versions`` must describe
exactly these tables (a test compares them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voxserve.storage.batches import BatchJobRecord, BatchRequestRecord
from voxserve.storage.protocol import (
    ApiKey,
    FileRecord,
    Owner,
    UsageRecord,
    VoiceRecord,
    VoiceSample,
    WebSession,
)
from voxserve.storage.voice_rules import MAIN_EMOTION

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends.

    SQLite keeps no offset and returns naive values; PostgreSQL returns aware ones. Values are
    stored in UTC and always come back aware in UTC. Naive inputs are refused: they are a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware values")
        value = value.astimezone(UTC)
        # SQLite compares datetimes as text: drop the offset so every stored value looks alike.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OwnerRow(Base):
    __tablename__ = "owners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    credits: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VoiceRow(Base):
    __tablename__ = "voices"
    __table_args__ = (Index(None, "owner_id", "deleted_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str | None] = mapped_column(String(200))
    languages: Mapped[list[str]] = mapped_column(JSON)
    gender: Mapped[str | None] = mapped_column(String(32))
    age: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    color: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    retention_notice: Mapped[int] = mapped_column(Integer)
    trimmed_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purge_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class VoiceSampleRow(Base):
    """One sample of a voice; the composite key makes (voice, emotion) unique."""

    __tablename__ = "voice_samples"

    voice_id: Mapped[str] = mapped_column(
        ForeignKey("voices.id", ondelete="CASCADE"), primary_key=True
    )
    emotion: Mapped[str] = mapped_column(String(64), primary_key=True)
    blob_key: Mapped[str] = mapped_column(String(512))
    seconds: Mapped[float] = mapped_column(Float)


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (Index(None, "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(512))
    content_type: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageRow(Base):
    __tablename__ = "usage"
    __table_args__ = (Index(None, "owner_id", "created_at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer)
    characters: Mapped[int] = mapped_column(BigInteger)
    audio_seconds: Mapped[float] = mapped_column(Float)
    tokens: Mapped[int] = mapped_column(BigInteger)
    credits: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BatchJobRow(Base):
    """A batch job (see ``storage.batches``); its requests are ``BatchRequestRow``s."""

    __tablename__ = "batch_jobs"
    __table_args__ = (Index(None, "owner_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    input_files: Mapped[list[str]] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_requests: Mapped[int] = mapped_column(Integer)
    completed_requests: Mapped[int] = mapped_column(Integer)
    succeeded_requests: Mapped[int] = mapped_column(Integer)
    failed_requests: Mapped[int] = mapped_column(Integer)
    output_file: Mapped[str | None] = mapped_column(String(64))
    error_file: Mapped[str | None] = mapped_column(String(64))
    timeout_hours: Mapped[int] = mapped_column(Integer)
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BatchRequestRow(Base):
    __tablename__ = "batch_requests"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    custom_id: Mapped[str | None] = mapped_column(String(512))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SecretRow(Base):
    """Server-wide secrets shared by every replica (the URL-signing key)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- rows -> records


def owner_record(row: OwnerRow) -> Owner:
    return Owner(id=row.id, name=row.name, created_at=row.created_at, credits=row.credits)


def api_key_record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        admin=bool(row.admin),
    )


def session_record(row: SessionRow) -> WebSession:
    return WebSession(
        id=row.id,
        owner_id=row.owner_id,
        key_id=row.key_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def sample_record(row: VoiceSampleRow) -> VoiceSample:
    return VoiceSample(blob_key=row.blob_key, seconds=row.seconds, emotion=row.emotion or None)


def voice_record(row: VoiceRow, samples: list[VoiceSampleRow]) -> VoiceRecord:
    """The record for a voice row and its sample rows (main sample first, then by emotion)."""
    ordered = sorted(samples, key=lambda s: s.emotion)
    return VoiceRecord(
        id=row.id,
        owner_id=row.owner_id,
        name=row.name,
        created_at=row.created_at,
        samples=tuple(sample_record(s) for s in ordered),
        slug=row.slug,
        languages=tuple(row.languages or ()),
        gender=row.gender,
        age=row.age,
        tags=None if row.tags is None else tuple(row.tags),
        color=row.color,
        description=row.description,
        retention_notice=row.retention_notice,
        trimmed_seconds=row.trimmed_seconds,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        purge_after=row.purge_after,
    )


def voice_columns(voice: VoiceRecord) -> dict[str, Any]:
    """Column values for a new voice row (JSON columns get lists)."""
    return {
        "id": voice.id,
        "owner_id": voice.owner_id,
        "name": voice.name,
        "slug": voice.slug,
        "languages": list(voice.languages),
        "gender": voice.gender,
        "age": voice.age,
        "tags": None if voice.tags is None else list(voice.tags),
        "color": voice.color,
        "description": voice.description,
        "retention_notice": voice.retention_notice,
        "trimmed_seconds": voice.trimmed_seconds,
        "created_at": voice.created_at,
        "updated_at": voice.updated_at,
        "deleted_at": voice.deleted_at,
        "purge_after": voice.purge_after,
    }


def sample_row(voice_id: str, sample: VoiceSample) -> VoiceSampleRow:
    return VoiceSampleRow(
        voice_id=voice_id,
        emotion=sample.emotion or MAIN_EMOTION,
        blob_key=sample.blob_key,
        seconds=sample.seconds,
    )


def file_record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        owner_id=row.owner_id,
        filename=row.filename,
        bytes=row.bytes,
        purpose=row.purpose,
        blob_key=row.blob_key,
        content_type=row.content_type,
        created_at=row.created_at,
        expires_at=row.expires_at,
        deleted_at=row.deleted_at,
    )


def file_row(record: FileRecord) -> FileRow:
    return FileRow(
        id=record.id,
        owner_id=record.owner_id,
        filename=record.filename,
        bytes=record.bytes,
        purpose=record.purpose,
        blob_key=record.blob_key,
        content_type=record.content_type,
        created_at=record.created_at,
        expires_at=record.expires_at,
        deleted_at=record.deleted_at,
    )


def usage_record(row: UsageRow) -> UsageRecord:
    return UsageRecord(
        id=row.id,
        owner_id=row.owner_id,
        endpoint=row.endpoint,
        engine=row.engine,
        status=row.status,
        created_at=row.created_at,
        characters=row.characters,
        audio_seconds=row.audio_seconds,
        tokens=row.tokens,
        credits=row.credits,
    )


def usage_row(record: UsageRecord) -> UsageRow:
    """A new row; the id is always assigned by the database."""
    return UsageRow(
        owner_id=record.owner_id,
        endpoint=record.endpoint,
        engine=record.engine,
        status=record.status,
        created_at=record.created_at,
        characters=record.characters,
        audio_seconds=record.audio_seconds,
        tokens=record.tokens,
        credits=record.credits,
    )


# A batch record's fields and its row's attributes share their names, except ``metadata``
# (``metadata_`` on the row: declarative classes reserve ``metadata``), so one mapping over the
# record's fields converts both ways and also names the columns of an update.


def batch_job_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    """Row attribute values for batch job fields named as on ``BatchJobRecord`` (every field for
    a new row, some for an update); JSON columns get plain lists and dicts.

    Raises:
        ValueError: a name that is not a ``BatchJobRecord`` field.
    """
    unknown = set(values) - _JOB_FIELDS
    if unknown:
        raise ValueError(f"not batch job fields: {sorted(unknown)}")
    return {_job_attribute(name): _json_value(value) for name, value in values.items()}


def batch_job_row(job: BatchJobRecord) -> BatchJobRow:
    return BatchJobRow(**batch_job_columns(_field_values(job)))


def batch_job_record(row: BatchJobRow) -> BatchJobRecord:
    values = {name: getattr(row, _job_attribute(name)) for name in _JOB_FIELDS}
    values.update(input_files=tuple(row.input_files), errors=tuple(row.errors))
    return BatchJobRecord(**values)


def batch_request_values(request: BatchRequestRecord) -> dict[str, Any]:
    """A request's column values, as one parameter set of a bulk ``INSERT``."""
    return {name: _json_value(value) for name, value in _field_values(request).items()}


def batch_request_record(row: BatchRequestRow) -> BatchRequestRecord:
    return BatchRequestRecord(**{f.name: getattr(row, f.name) for f in fields(BatchRequestRecord)})


_JOB_FIELDS = frozenset(f.name for f in fields(BatchJobRecord))


def _job_attribute(name: str) -> str:
    return "metadata_" if name == "metadata" else name


def _field_values(record: BatchJobRecord | BatchRequestRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _json_value(value: Any) -> Any:
    """A record value as a JSON column stores it (sequences as lists, mappings as dicts)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return value
