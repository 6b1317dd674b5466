"""The cleanup the server runs periodically: purge deleted and expired objects, and remove blobs
that no row points at (left by a crash between writing a blob and its row).

Replicas sharing one database take turns: a run holds the storage's ``cleanup`` lock (an
advisory lock on PostgreSQL), and a replica that finds it held skips its run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from voxserve.core.ids import utcnow
from voxserve.core.voices import VoiceService
from voxserve.settings import RetentionSettings
from voxserve.storage.protocol import BlobStore, FileRepository, Locks, VoiceRepository

log = logging.getLogger(__name__)

LOCK_NAME = "cleanup"
OWNED_PREFIXES = ("voices/", "files/")
"""Blob areas whose every blob belongs to a row; other areas (preset samples) are caches."""


@dataclass(frozen=True)
class CleanupReport:
    voices_purged: int
    files_purged: int
    orphans_removed: int
    temporaries_removed: int = 0
    """Half-written blobs left by a crash during a write."""


class CleanupService:
    """Purges what is due and removes orphaned and half-written blobs, one replica at a time."""

    def __init__(
        self,
        voices: VoiceService,
        voice_repo: VoiceRepository,
        files: FileRepository,
        blobs: BlobStore,
        retention: RetentionSettings,
        locks: Locks,
    ) -> None:
        self._voices = voices
        self._voice_repo = voice_repo
        self._files = files
        self._blobs = blobs
        self._retention = retention
        self._locks = locks

    async def run_once(self, now: datetime | None = None) -> CleanupReport | None:
        """One run, unless another replica is running one (then None at once)."""
        async with self._locks.hold(LOCK_NAME) as taken:
            if not taken:
                log.debug("cleanup: another replica is running it")
                return None
            return await self._run(now or utcnow())

    async def _run(self, now: datetime) -> CleanupReport:
        voices = await self._voice_repo.due_for_purge(now)
        for record in voices:
            await self._voices.purge(record)
        files = await self._files.due_for_purge(now)
        for file in files:
            await self._blobs.delete(file.blob_key)
            await self._files.purge(file.id)
        orphans = await self._remove_orphans(now)
        grace = timedelta(seconds=self._retention.orphan_grace_seconds)
        temporaries = await self._blobs.remove_stale_temporaries(now - grace)
        if voices or files or orphans or temporaries:
            log.info(
                "cleanup: %d voices, %d files purged; %d orphan blobs, %d temporaries removed",
                len(voices),
                len(files),
                orphans,
                temporaries,
            )
        return CleanupReport(len(voices), len(files), orphans, temporaries)

    async def _remove_orphans(self, now: datetime) -> int:
        referenced = (
            await self._voice_repo.referenced_blob_keys() | await self._files.referenced_blob_keys()
        )
        # A voice's folder also holds derived blobs (cached voice states): keep the whole folder.
        folders = {key.rsplit("/", 1)[0] + "/" for key in referenced if key.startswith("voices/")}
        cutoff = now - timedelta(seconds=self._retention.orphan_grace_seconds)
        removed = 0
        for prefix in OWNED_PREFIXES:
            async for info in self._blobs.list(prefix):
                if info.modified > cutoff or info.key in referenced:
                    continue
                if any(info.key.startswith(folder) for folder in folders):
                    continue
                await self._blobs.delete(info.key)
                removed += 1
        return removed
