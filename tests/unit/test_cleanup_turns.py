"""The periodic cleanup runs on one replica at a time: a run that finds the storage's
``cleanup`` lock held (another replica is cleaning) skips at once; the next run goes ahead."""

from __future__ import annotations

from tests.support.audio_samples import tone_wav
from voxserve.bootstrap import open_services
from voxserve.core.ids import utcnow
from voxserve.core.voice_types import VoiceDraft
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


async def test_a_run_skips_while_another_replica_holds_the_lock(settings: Settings) -> None:
    async with open_services(settings, engines=[FakeTTSEngine()]) as s:
        await s.storage.keys.get_or_create_owner("o1", "o1")
        view = await s.voices.create("o1", VoiceDraft(name="v", sample=tone_wav()))
        now = utcnow()
        await s.storage.voices.mark_deleted("o1", view.id, at=now, purge_after=now)

        async with s.storage.locks.hold("cleanup") as taken:  # "another replica" cleaning
            assert taken
            assert await s.cleanup.run_once() is None
        assert [b async for b in s.storage.blobs.list("voices/")]  # nothing was touched

        report = await s.cleanup.run_once()
        assert report is not None
        assert report.voices_purged == 1
