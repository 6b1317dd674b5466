"""OpenAI's speech shape: raw audio bytes (streamed) or SSE ``speech.audio.delta``/``done``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse

from voxserve.api.adapters.openai.errors import error_event
from voxserve.api.adapters.openai.protocol import SpeechRequest as WireSpeechRequest
from voxserve.api.streaming import (
    audio_bytes_logging_errors,
    prime,
    sse,
    sse_response,
    with_error_event,
)
from voxserve.audio.types import CONTENT_TYPES, AudioFormat
from voxserve.core.b64 import encode_base64
from voxserve.core.speech import PreparedSpeech, SpeechRequest, SpeechService
from voxserve.core.text import read_instructions

FORMATS: dict[str, AudioFormat] = {
    "mp3": "mp3",
    "opus": "opus",
    "aac": "aac",
    "flac": "flac",
    "wav": "wav",
    "pcm": "pcm16",
}
PCM_RATE = 24000
"""OpenAI's ``pcm`` is 24 kHz whatever the engine's rate."""


def to_core(body: WireSpeechRequest, owner_id: str) -> SpeechRequest:
    voice = body.voice if isinstance(body.voice, str) else body.voice.id
    style = read_instructions(body.instructions)
    return SpeechRequest(
        owner_id=owner_id,
        text=body.input,
        model=body.model,
        voice_id=voice,
        speed=min(max(body.speed * (style.pace or 1.0), 0.25), 4.0),
        emotion=style.emotion,
    )


async def create_speech(body: WireSpeechRequest, owner_id: str, speech: SpeechService) -> Response:
    prepared = await speech.prepare(to_core(body, owner_id))
    fmt = FORMATS[body.response_format]
    rate = PCM_RATE if fmt == "pcm16" else None
    if body.stream_format == "sse":
        events = await prime(speech_events(speech, prepared, fmt, rate))
        return sse_response(with_error_event(events, error_event))
    chunks = await prime(speech.encoded(prepared, fmt, sample_rate=rate))
    return StreamingResponse(audio_bytes_logging_errors(chunks), media_type=CONTENT_TYPES[fmt])


async def speech_events(
    speech: SpeechService, prepared: PreparedSpeech, fmt: AudioFormat, rate: int | None
) -> AsyncIterator[bytes]:
    async for data in speech.encoded(prepared, fmt, sample_rate=rate):
        yield sse({"type": "speech.audio.delta", "audio": encode_base64(data)})
    tokens = prepared.characters
    usage = {"input_tokens": tokens, "output_tokens": 0, "total_tokens": tokens}
    yield sse({"type": "speech.audio.done", "usage": usage})
