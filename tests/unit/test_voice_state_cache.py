"""A saved voice's state is read from the blob store once per process, then from memory; a
replaced sample gets a state of its own."""

from __future__ import annotations

from typing import Any

from tests.support.audio_samples import tone_wav
from voxserve.bootstrap import open_services
from voxserve.core.voice_types import VoiceDraft
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings


async def test_a_voice_state_is_read_once_then_kept_in_memory(settings: Settings) -> None:
    engine = FakeTTSEngine()
    async with open_services(settings, engines=[engine]) as s:
        await s.storage.keys.get_or_create_owner("o1", "o1")
        view = await s.voices.create("o1", VoiceDraft(name="v", sample=tone_wav()))
        record = await s.voices.get_record("o1", view.id)
        handle = s.engines.tts_handle(engine.name)
        reads: list[str] = []
        get = s.storage.blobs.get

        async def counting_get(key: str) -> Any:
            reads.append(key)
            return await get(key)

        s.storage.blobs.get = counting_get  # type: ignore[method-assign]
        first = await s.speech.custom_voice_state(record, handle, None)
        assert engine.clones == 1 and len(reads) == 2  # the state (missing), then the sample
        again = [await s.speech.custom_voice_state(record, handle, None) for _ in range(3)]
        assert again == [first] * 3 and len(reads) == 2 and engine.clones == 1

        await s.voices.update("o1", view.id, {}, {"happy": tone_wav(amp=0.6)})
        happy = await s.speech.custom_voice_state(
            await s.voices.get_record("o1", view.id), handle, "happy"
        )
        assert happy != first and engine.clones == 2
