"""Voice service rules that need no server: crash-safe delete, soft delete, orphan cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.audio_samples import tone_wav
from voxserve.bootstrap import UnsafeStartup, ensure_safe_to_serve, open_services
from voxserve.core.ids import utcnow
from voxserve.core.voice_types import VoiceDraft
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.protocol import VoiceQuery


async def test_crash_between_hide_and_purge_is_cleaned_up(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine()]) as s:
        await s.storage.keys.get_or_create_owner("o1", "o1")
        view = await s.voices.create("o1", VoiceDraft(name="v", sample=tone_wav()))
        now = utcnow()
        # The first step of a delete, then a "crash": the row is hidden, the sample still there.
        await s.storage.voices.mark_deleted("o1", view.id, at=now, purge_after=now)
        _, total = await s.voices.list("o1", type="custom", query=VoiceQuery(), offset=0, limit=10)
        assert total == 0
        assert [b async for b in s.storage.blobs.list("voices/")]
        report = await s.cleanup.run_once()
        assert report.voices_purged == 1
        assert not [b async for b in s.storage.blobs.list("voices/")]


async def test_orphan_blob_from_crashed_create_is_removed_after_grace(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine()]) as s:
        await s.storage.keys.get_or_create_owner("o1", "o1")
        await s.storage.blobs.put("voices/o1/ghost/sample-main.wav", tone_wav())
        kept = await s.voices.create("o1", VoiceDraft(name="v", sample=tone_wav()))
        await s.cleanup.run_once()  # within the grace period: nothing removed
        assert await s.storage.blobs.exists("voices/o1/ghost/sample-main.wav")
        later = utcnow() + timedelta(seconds=settings.retention.orphan_grace_seconds + 5)
        report = await s.cleanup.run_once(later)
        assert report.orphans_removed == 1
        assert await s.voices.sample("o1", kept.id)


async def test_soft_delete_keeps_sample_until_retention(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine()]) as s:
        await s.storage.keys.get_or_create_owner("o1", "o1")
        view = await s.voices.create("o1", VoiceDraft(name="v", sample=tone_wav()))
        await s.voices.delete("o1", view.id, soft=True)
        assert (await s.voices.list("o1", type="custom", query=VoiceQuery(), offset=0, limit=9))[
            1
        ] == 0
        assert (await s.cleanup.run_once()).voices_purged == 0
        assert [b async for b in s.storage.blobs.list("voices/o1/")]
        later = utcnow() + timedelta(days=settings.retention.deleted_voice_days, seconds=1)
        assert (await s.cleanup.run_once(later)).voices_purged == 1
        assert not [b async for b in s.storage.blobs.list("voices/o1/")]


async def test_public_bind_without_keys_refuses_to_start(settings: Settings) -> None:
    public = settings.model_copy(update={"host": "0.0.0.0"})
    async with open_services(public, engines=[FakeTTSEngine()]) as s:
        with pytest.raises(UnsafeStartup, match="voxserve keys create"):
            await ensure_safe_to_serve(s)
        await s.auth.create_key("admin")
        await ensure_safe_to_serve(s)


async def test_cleanup_removes_temporaries_a_killed_write_left(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine()]) as s:
        # What a kill -9 between writing and renaming leaves: a hidden temporary file.
        folder = settings.resolved_blob_dir / "voices" / "o1" / "v1"
        folder.mkdir(parents=True)
        stale = folder / ".sample-main.wav.0a1b2c3d4e5f.tmp"
        stale.write_bytes(b"half a sample")
        await s.cleanup.run_once()  # within the grace period: a write may still be running
        assert stale.exists()
        later = utcnow() + timedelta(seconds=settings.retention.orphan_grace_seconds + 5)
        report = await s.cleanup.run_once(later)
        assert report.temporaries_removed == 1
        assert not stale.exists()
