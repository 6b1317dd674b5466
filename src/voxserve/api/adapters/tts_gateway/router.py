"""The ``/api/tts`` gateway (seed 002): generate, stream, and manage cloned voices.

A thin adapter over the same services as every other shape: a voice cloned here is the same voice
on ``/v1/audio/speech`` and ``/voices``. Errors render through ``errors.render``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from voxserve.api.adapters.tts_gateway.convert import (
    check_clone_sample,
    chunk_count,
    cloned_voice,
    family_voice,
    preset_voice,
    saved_voice,
    to_core,
    updated_voice,
    voice_changes,
    voice_draft,
)
from voxserve.api.adapters.tts_gateway.errors import error_event, render_error
from voxserve.api.adapters.tts_gateway.protocol import (
    TtsAudioDelta,
    TtsAudioDone,
    TtsClonedVoice,
    TtsCloneRequest,
    TtsDeletedVoice,
    TtsError,
    TtsGenerateRequest,
    TtsGeneration,
    TtsPresetList,
    TtsReply,
    TtsStreamRequest,
    TtsUpdatedVoice,
    TtsVoicePage,
    TtsVoiceUpdate,
)
from voxserve.api.bodies import inline_schema
from voxserve.api.deps import (
    CurrentOwner,
    DefaultSpeechEngineDep,
    GenerationServiceDep,
    SettingsDep,
    SpeechDep,
    VoiceServiceDep,
    public_base_url,
)
from voxserve.api.shapes import ErrorInfo
from voxserve.api.streaming import (
    ClosingStreamingResponse,
    closing,
    prime,
    sse,
    sse_response,
    with_error_event,
)
from voxserve.api.wire import MAX_PAGE
from voxserve.audio.types import AudioFormat
from voxserve.core.aliases import resolve_alias
from voxserve.core.b64 import converted, decode_base64_off_loop, encode_base64
from voxserve.core.gateway_presets import FAMILIES
from voxserve.core.presets import Preset
from voxserve.core.speech import PreparedSpeech, SpeechService
from voxserve.core.types import VoiceQuery
from voxserve.core.voice_types import preset_view
from voxserve.core.voices import VoiceService
from voxserve.errors import VoxError

PREFIX = "/api/tts"
VoiceId = Annotated[str, Path(description="A saved voice's id.", examples=["voice-7d2e"])]
router = APIRouter(prefix=PREFIX, tags=["TTS gateway"])


class TtsGatewayShape:
    """The gateway's envelope for everything under ``/api/tts``."""

    name = "tts_gateway"
    prefixes = (PREFIX,)
    error_model = TtsError

    def render_error(self, err: ErrorInfo) -> dict[str, Any]:
        return render_error(err)

    def error_event(self, exc: VoxError) -> bytes:
        return error_event(exc)


SHAPE = TtsGatewayShape()
STREAM_EVENTS = {"oneOf": [inline_schema(m) for m in (TtsAudioDelta, TtsAudioDone, TtsError)]}


@router.post("/generate", response_model=TtsReply[TtsGeneration])
async def generate_speech(
    body: TtsGenerateRequest,
    request: Request,
    owner: CurrentOwner,
    speech: SpeechDep,
    generations: GenerationServiceDep,
) -> TtsReply[TtsGeneration]:
    """Speak ``input``; the reply holds the audio (base64) and a URL that serves it for a while."""
    base_url = public_base_url(request)  # refused before anything is spoken or stored
    asked = await converted(lambda: to_core(body, owner.id), body.ref_audio)
    prepared = await speech.prepare(asked)
    audio, stored = await speech.generate(prepared, body.response_format)
    generation = TtsGeneration(
        audio_data=encode_base64(audio),
        format=body.response_format,
        generation_id=stored.id,
        audio_url=generations.url(stored, base_url=base_url),
        chunks=chunk_count(body.input),
        credits_used=prepared.characters,
    )
    return TtsReply(data=generation)


@router.post(
    "/stream",
    response_class=ClosingStreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": STREAM_EVENTS}}}},
)
async def stream_speech(
    body: TtsStreamRequest, owner: CurrentOwner, speech: SpeechDep
) -> StreamingResponse:
    """SSE: ``speech.audio.delta`` events (``{"audio_data": b64}``), then ``speech.audio.done``;
    a failure after the first audio ends the stream with an ``error`` event."""
    asked = await converted(lambda: to_core(body, owner.id), body.ref_audio)
    prepared = await speech.prepare(asked)
    fmt = body.response_format
    events = await prime(speech_events(speech, prepared, fmt, chunk_count(body.input)))
    return sse_response(with_error_event(events, error_event))


async def speech_events(
    speech: SpeechService, prepared: PreparedSpeech, fmt: AudioFormat, chunks: int
) -> AsyncIterator[bytes]:
    async with closing(speech.encoded(prepared, fmt)) as encoded:
        async for data in encoded:
            delta = TtsAudioDelta(audio_data=encode_base64(data))
            yield sse(delta.model_dump(), "speech.audio.delta")
    done = TtsAudioDone(chunks=chunks, credits_used=prepared.characters)
    yield sse(done.model_dump(), "speech.audio.done")


@router.post("/voices/clone", response_model=TtsReply[TtsClonedVoice])
async def clone_voice(
    body: TtsCloneRequest, owner: CurrentOwner, voices: VoiceServiceDep
) -> TtsReply[TtsClonedVoice]:
    """Save a voice from a 5 to 30 s base64 sample; use its ``id`` as ``voice_id``."""
    sample = await decode_base64_off_loop(body.ref_audio, "ref_audio")
    await check_clone_sample(sample)
    return TtsReply(data=cloned_voice(await voices.create(owner.id, voice_draft(body, sample))))


@router.get("/voices/mine", response_model=TtsReply[TtsVoicePage])
async def list_my_voices(
    request: Request,
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> TtsReply[TtsVoicePage]:
    """The owner's saved voices (from every API shape), newest first."""
    items, total = await voices.list(
        owner.id, type="custom", query=VoiceQuery(), offset=(page - 1) * limit, limit=limit
    )
    url = public_base_url(request)
    saved = [saved_voice(v, base_url=url) for v in items]
    return TtsReply(data=TtsVoicePage(voices=saved, total=total, page=page, limit=limit))


@router.get("/voices/presets", response_model=TtsReply[TtsPresetList])
async def list_preset_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    engine: DefaultSpeechEngineDep,
    settings: SettingsDep,
) -> TtsReply[TtsPresetList]:
    """The named presets (Paul, Jane... with a stable id per emotional variant, each served by
    an installed voice), then the installed engines' own presets."""
    pinned = settings.engines.voice_aliases
    items = [
        family_voice(f, served_by(f.variants()[f.emotions[0]], voices, engine, pinned))
        for f in FAMILIES
    ]
    items += [preset_voice(preset_view(p)) for p in voices.presets.all()]
    return TtsReply(data=TtsPresetList(voices=items, total=len(items)))


@router.patch("/voices/{voice_id}", response_model=TtsReply[TtsUpdatedVoice])
async def update_voice(
    voice_id: str, body: TtsVoiceUpdate, owner: CurrentOwner, voices: VoiceServiceDep
) -> TtsReply[TtsUpdatedVoice]:
    """Change the name, language, gender or tags of a saved voice."""
    changes = voice_changes(body.model_dump(exclude_unset=True))
    return TtsReply(data=updated_voice(await voices.update(owner.id, voice_id, changes)))


@router.delete("/voices/{voice_id}", response_model=TtsReply[TtsDeletedVoice])
async def delete_voice(
    voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep
) -> TtsReply[TtsDeletedVoice]:
    """Delete a saved voice and its sample for good."""
    view = await voices.delete(owner.id, voice_id)
    return TtsReply(data=TtsDeletedVoice(id=view.id))


@router.get(
    "/voices/{voice_id}/sample",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}},
)
async def get_voice_sample(
    voice_id: VoiceId, owner: CurrentOwner, voices: VoiceServiceDep
) -> Response:
    """A voice's sample as mono 16-bit WAV (the ``ref_audio_url`` of saved voices)."""
    return Response(await voices.sample(owner.id, voice_id), media_type="audio/wav")


def served_by(
    voice_id: str, voices: VoiceService, engine: str | None, pinned: dict[str, str]
) -> Preset | None:
    """The installed preset speech uses for a named preset's id."""
    match = resolve_alias(voice_id, voices.presets, engine=engine, pinned=pinned)
    return match.preset if match else None
