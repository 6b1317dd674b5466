"""Records for storage tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from voxserve.storage.protocol import FileRecord, Storage, UsageRecord, VoiceRecord, VoiceSample

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def voice(owner_id: str, name: str = "Voice", *, minutes: int = 0, **fields: Any) -> VoiceRecord:
    """A voice created ``minutes`` after T0, with a main sample under its own key."""
    voice_id = fields.pop("id", None) or str(uuid.uuid4())
    samples = fields.pop("samples", None) or (
        VoiceSample(f"voices/{owner_id}/{voice_id}/sample-main.wav", 3.5),
    )
    fields.setdefault("created_at", T0 + timedelta(minutes=minutes))
    return VoiceRecord(id=voice_id, owner_id=owner_id, name=name, samples=samples, **fields)


def file(owner_id: str, *, minutes: int = 0, **fields: Any) -> FileRecord:
    file_id = fields.pop("id", None) or f"file-{uuid.uuid4().hex}"
    values: dict[str, Any] = {
        "filename": "speech.wav",
        "bytes": 1234,
        "purpose": "audio",
        "blob_key": f"files/{owner_id}/{file_id}",
        "content_type": "audio/wav",
        **fields,
    }
    return FileRecord(
        id=file_id, owner_id=owner_id, created_at=T0 + timedelta(minutes=minutes), **values
    )


def usage(owner_id: str, at: datetime, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {"endpoint": "speech", "engine": "fake-tts", "status": 200, **fields}
    return UsageRecord(owner_id=owner_id, created_at=at, **values)


async def balance(storage: Storage, owner_id: str) -> int | None:
    """The owner's credit balance (the owner must exist)."""
    owner = await storage.keys.get_owner(owner_id)
    assert owner is not None
    return owner.credits
