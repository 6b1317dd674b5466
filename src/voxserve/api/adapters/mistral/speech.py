"""Mistral's speech shape: ``{"audio_data": b64}`` or SSE ``speech.audio.delta``/``done``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, Response

from voxserve.api.adapters.mistral.errors import error_event
from voxserve.api.adapters.mistral.protocol import SpeechRequest as WireSpeechRequest
from voxserve.api.streaming import prime, sse, sse_response, with_error_event
from voxserve.audio.types import AudioFormat
from voxserve.core.b64 import decode_base64, encode_base64
from voxserve.core.speech import PreparedSpeech, SpeechRequest, SpeechService
from voxserve.errors import Unsupported


def to_core(body: WireSpeechRequest, owner_id: str) -> SpeechRequest:
    if body.conversation_history:
        raise Unsupported(
            "conversation_history is not supported by the local engines.",
            field="conversation_history",
        )
    return SpeechRequest(
        owner_id=owner_id,
        text=body.input,
        model=body.model,
        voice_id=body.voice_id,
        ref_audio=decode_base64(body.ref_audio, "ref_audio") if body.ref_audio else None,
        speed=body.speed,
        language=body.language,
    )


async def create_speech(body: WireSpeechRequest, owner_id: str, speech: SpeechService) -> Response:
    prepared = await speech.prepare(to_core(body, owner_id))
    fmt = body.response_format
    if not body.stream:
        audio = await speech.synthesize(prepared, fmt)
        return JSONResponse({"audio_data": encode_base64(audio)})
    events = await prime(speech_events(speech, prepared, fmt))
    return sse_response(with_error_event(events, error_event))


async def speech_events(
    speech: SpeechService, prepared: PreparedSpeech, fmt: AudioFormat
) -> AsyncIterator[bytes]:
    async for data in speech.encoded(prepared, fmt):
        payload = {"type": "speech.audio.delta", "audio_data": encode_base64(data)}
        yield sse(payload, "speech.audio.delta")
    done = {"type": "speech.audio.done", "usage": usage(prepared)}
    yield sse(done, "speech.audio.done")


def usage(prepared: PreparedSpeech) -> dict[str, Any]:
    return {
        "prompt_tokens": prepared.characters,
        "completion_tokens": 0,
        "total_tokens": prepared.characters,
        "prompt_characters": prepared.characters,
    }
