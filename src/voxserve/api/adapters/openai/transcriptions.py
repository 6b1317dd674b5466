"""OpenAI's transcription shape: ``response_format`` json, text, srt, vtt, verbose_json; stream
events ``transcript.text.delta``/``transcript.text.done``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from voxserve.api.adapters.openai.errors import error_event
from voxserve.api.streaming import prime, sse, sse_response, with_error_event
from voxserve.core.subtitles import to_srt, to_vtt
from voxserve.core.transcription import PreparedTranscription, Transcript, TranscriptionService
from voxserve.errors import ValidationFailed

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def check_format(response_format: str) -> None:
    if response_format not in FORMATS:
        raise ValidationFailed(
            f"response_format: '{response_format}' is not one of {', '.join(FORMATS)}.",
            field="response_format",
        )


async def create_transcription(
    prepared: PreparedTranscription,
    service: TranscriptionService,
    *,
    response_format: str,
    stream: bool,
) -> Response:
    if stream:
        events = await prime(transcript_events(prepared, service))
        return sse_response(with_error_event(events, error_event))
    transcript = await service.transcribe(prepared)
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript.segments))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(transcript.segments), media_type="text/vtt")
    if response_format == "verbose_json":
        return JSONResponse(verbose(transcript, prepared.options.word_timestamps))
    return JSONResponse({"text": transcript.text, "usage": usage(transcript.duration)})


def wants_json(response_format: str | None) -> bool:
    """Plain ``json`` answers the Mistral body, a superset of OpenAI's ``{"text", "usage"}``."""
    return response_format in (None, "json")


def verbose(transcript: Transcript, words: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [
            {"id": i, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
            for i, s in enumerate(transcript.segments)
        ],
        "usage": usage(transcript.duration),
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in transcript.segments
            for w in (s.words or ())
        ]
    return body


def usage(duration: float) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(duration)}


async def transcript_events(
    prepared: PreparedTranscription, service: TranscriptionService
) -> AsyncIterator[bytes]:
    _, segments = await service.stream(prepared)
    texts: list[str] = []
    async for segment in segments:
        piece = segment.text.strip()
        if piece:
            yield sse({"type": "transcript.text.delta", "delta": (" " if texts else "") + piece})
            texts.append(piece)
    yield sse({"type": "transcript.text.done", "text": " ".join(texts)})
