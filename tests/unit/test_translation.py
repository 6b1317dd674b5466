"""Translation (speech in any language to English text) in core: ``task="translate"`` reaches an
engine that can translate, and one that cannot answers what is needed."""

from __future__ import annotations

import pytest

from tests.support.audio_samples import tone_wav
from voxserve.bootstrap import open_services
from voxserve.core.auth import LOCAL_OWNER_ID
from voxserve.core.transcription import AudioSource, Transcript, TranscriptionRequest
from voxserve.engines.fake import FakeSTTEngine
from voxserve.engines.pocketsphinx import PocketsphinxEngine
from voxserve.errors import Unsupported
from voxserve.settings import Settings


async def run(settings: Settings, *engines: object, model: str | None = None) -> Transcript:
    async with open_services(settings, engines=list(engines)) as services:  # type: ignore[arg-type, unused-ignore]
        await services.storage.keys.get_or_create_owner(LOCAL_OWNER_ID, "local")
        request = TranscriptionRequest(
            LOCAL_OWNER_ID, AudioSource(data=tone_wav()), model=model, task="translate"
        )
        prepared = await services.transcription.prepare(request)
        assert prepared.options.task == "translate"
        return await services.transcription.transcribe(prepared)


async def test_translate_reaches_an_engine_that_can(settings: Settings) -> None:
    engine = FakeSTTEngine("Guten Tag.", language="de", translation="Good day.")
    transcript = await run(settings, engine)
    assert transcript.text == "Good day."
    assert [c.task for c in engine.calls] == ["translate"]


async def test_translate_prefers_the_best_engine_that_can(settings: Settings) -> None:
    translator = FakeSTTEngine(translation="Good day.")
    translator.name = "translator"
    transcript = await run(settings, FakeSTTEngine(), translator, model="whisper-1")
    assert transcript.text == "Good day."


@pytest.mark.parametrize("engine", [FakeSTTEngine(), PocketsphinxEngine()], ids=lambda e: e.name)
async def test_engines_that_cannot_translate_say_what_is_needed(
    settings: Settings, engine: object
) -> None:
    with pytest.raises(Unsupported, match="cannot translate") as info:
        await run(settings, engine)
    assert info.value.status == 400
    assert "voxserve models pull faster-whisper-base" in info.value.message
