"""Mistral's transcription shape: JSON with model/text/language/segments/usage, or SSE events
``transcription.language``, ``.text.delta``, ``.segment``, ``.done`` (with ``event:`` lines)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, Response

from voxserve.api.adapters.mistral.errors import error_event
from voxserve.api.streaming import prime, sse, sse_response, with_error_event
from voxserve.core.transcription import PreparedTranscription, TranscriptionService, join_text
from voxserve.engines.protocol import Segment


async def create_transcription(
    prepared: PreparedTranscription, model: str, service: TranscriptionService, *, stream: bool
) -> Response:
    if stream:
        events = await prime(transcription_events(prepared, model, service))
        return sse_response(with_error_event(events, error_event))
    transcript = await service.transcribe(prepared)
    words = prepared.options.word_timestamps
    segments = [segment_body(s, words) for s in transcript.segments]
    return JSONResponse(
        response_body(prepared, model, transcript.text, transcript.language, segments)
    )


async def transcription_events(
    prepared: PreparedTranscription, model: str, service: TranscriptionService
) -> AsyncIterator[bytes]:
    words = prepared.options.word_timestamps
    info, segments = await service.stream(prepared)
    yield sse(
        {"type": "transcription.language", "audio_language": info.language},
        "transcription.language",
    )
    seen: list[Segment] = []
    bodies: list[dict[str, Any]] = []  # rendered once: the .done event lists them again
    async for segment in segments:
        delta = segment.text.strip()
        if delta:
            delta = delta if not seen else " " + delta
            yield sse(
                {"type": "transcription.text.delta", "text": delta}, "transcription.text.delta"
            )
        seen.append(segment)
        bodies.append(segment_body(segment, words))
        yield sse({"type": "transcription.segment", **bodies[-1]}, "transcription.segment")
    body = response_body(prepared, model, join_text(seen), info.language, bodies)
    yield sse({"type": "transcription.done", **body}, "transcription.done")


def response_body(
    prepared: PreparedTranscription,
    model: str,
    text: str,
    language: str | None,
    segments: list[dict[str, Any]],
) -> dict[str, Any]:
    """The answer's JSON; ``segments`` are already rendered by ``segment_body``."""
    seconds = math.ceil(prepared.duration)
    return {
        "model": model,
        "text": text,
        "language": language,
        "segments": segments,
        "usage": {
            "prompt_audio_seconds": seconds,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
            "type": "duration",
            "seconds": seconds,
        },
    }


def segment_body(segment: Segment, words: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": segment.text.strip(),
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "type": "transcription_segment",
    }
    if words and segment.words is not None:
        body["words"] = [
            {"word": w.word.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in segment.words
        ]
    return body
