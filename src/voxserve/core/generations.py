"""Stored generations: synthesised audio kept for a while so a client can fetch it by URL.

A generation is a file (``FileService``) with purpose ``generation`` and an ``expires_at`` of
``retention.generated_audio_hours`` after its creation. Its URL is a signed file URL, so it works
without an API key (an ``<audio src>`` cannot send one) until the retention ends; after that the
file answers 404 and the periodic cleanup purges it.
"""

from __future__ import annotations

import math
from datetime import timedelta

from voxserve.audio.types import CONTENT_TYPES, AudioFormat
from voxserve.core.files import FileService
from voxserve.core.ids import utcnow
from voxserve.settings import RetentionSettings
from voxserve.storage.protocol import FileRecord

PURPOSE = "generation"
EXTENSIONS: dict[AudioFormat, str] = {
    "wav": "wav",
    "pcm": "pcm",
    "pcm16": "pcm",
    "mp3": "mp3",
    "flac": "flac",
    "opus": "ogg",
    "aac": "aac",
}


class GenerationService:
    """Keeps generated audio for the retention period and makes URLs for it."""

    def __init__(self, files: FileService, retention: RetentionSettings) -> None:
        self._files = files
        self._retention = retention

    async def save(self, owner_id: str, audio: bytes, fmt: AudioFormat) -> FileRecord:
        """Store ``audio`` (encoded as ``fmt``) until the retention period ends.

        Raises:
            ValidationFailed: empty audio.
        """
        expires_at = utcnow() + timedelta(hours=self._retention.generated_audio_hours)
        return await self._files.upload(
            owner_id,
            filename=f"speech.{EXTENSIONS[fmt]}",
            data=audio,
            content_type=CONTENT_TYPES[fmt],
            purpose=PURPOSE,
            expires_at=expires_at,
        )

    def url(self, record: FileRecord, *, base_url: str) -> str:
        """A URL that serves the audio without a key for as long as it is kept (the file's
        ``expires_at``, however long ``generated_audio_hours`` is)."""
        expires_at = record.expires_at or utcnow() + timedelta(
            hours=self._retention.generated_audio_hours
        )
        expires = math.ceil(expires_at.timestamp())
        return self._files.signed_url_until(record, base_url=base_url, expires=expires)
