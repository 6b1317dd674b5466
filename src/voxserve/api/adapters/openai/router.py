"""The OpenAI shape: ``OpenAIShape``, its side of the shared ``/v1`` routes (speech,
transcription, chat; see ``api.shapes``), and ``POST /v1/audio/translations``, which only OpenAI
has. Errors render through ``errors.render_error``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from voxserve.api.adapters.openai import convert, errors
from voxserve.api.adapters.openai.protocol import (
    ChatCompletionRequest,
    DiarizedSegment,
    DiarizedTranscription,
    ErrorResponse,
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechRequest,
    StreamError,
    Transcription,
    TranscriptTextDelta,
    TranscriptTextDone,
    Translation,
    TranslationFormFields,
    VerboseTranscription,
)
from voxserve.api.bodies import inline_schema, parse
from voxserve.api.deps import CurrentOwner, TranscriptionDep
from voxserve.api.forms import TranscriptionForm, form_request_body, read_transcription_form
from voxserve.api.shapes import ErrorInfo, SharedDocs
from voxserve.api.streaming import (
    ClosingStreamingResponse,
    audio_bytes_logging_errors,
    closing,
    prime,
    sse,
    sse_response,
    with_error_event,
)
from voxserve.audio.types import CONTENT_TYPES, AudioFormat
from voxserve.core.b64 import converted, encode_base64
from voxserve.core.chat import ChatCompletionRequest as CoreChatRequest
from voxserve.core.speech import PreparedSpeech, SpeechService
from voxserve.core.subtitles import to_srt, to_vtt
from voxserve.core.transcription import PreparedTranscription, Transcript, TranscriptionService
from voxserve.core.types import Segment
from voxserve.errors import VoxError

TRANSLATIONS = "/v1/audio/translations"
BINARY = {"type": "string", "format": "binary"}
TEXT_CONTENT: dict[str, dict[str, Any]] = {
    "text/plain": {"type": "string", "description": "text and srt"},
    "text/vtt": {"type": "string", "description": "vtt"},
}
router = APIRouter()


class OpenAIShape:
    """OpenAI's envelope, its side of the shared routes, and the translations route's answers."""

    name = "openai"
    prefixes: tuple[str, ...] = (TRANSLATIONS,)
    error_model = ErrorResponse
    docs = SharedDocs(
        speech_request=SpeechRequest,
        speech_responses={
            **{CONTENT_TYPES[f]: BINARY for f in convert.SPEECH_FORMATS.values()},
            "text/event-stream": {
                "oneOf": [
                    inline_schema(m) for m in (SpeechAudioDelta, SpeechAudioDone, StreamError)
                ]
            },
        },
        transcription_responses={
            "application/json": {
                "oneOf": [
                    inline_schema(Transcription),
                    inline_schema(VerboseTranscription),
                    inline_schema(DiarizedTranscription),
                ]
            },
            **TEXT_CONTENT,
            "text/event-stream": {
                "oneOf": [
                    inline_schema(m)
                    for m in (TranscriptTextDelta, DiarizedSegment, TranscriptTextDone, StreamError)
                ]
            },
        },
        chat_request=ChatCompletionRequest,
    )

    def render_error(self, err: ErrorInfo) -> dict[str, Any]:
        return errors.render_error(err)

    def error_event(self, exc: VoxError) -> bytes:
        return errors.error_event(exc)

    async def create_speech(
        self, body: dict[str, Any], owner_id: str, speech: SpeechService
    ) -> Response:
        wire = parse(SpeechRequest, body)
        prepared = await speech.prepare(convert.speech_request(wire, owner_id))
        fmt = convert.SPEECH_FORMATS[wire.response_format]
        rate = convert.PCM_RATE if fmt == "pcm16" else None
        if wire.stream_format == "sse":
            events = await prime(speech_events(speech, prepared, fmt, rate))
            return sse_response(with_error_event(events, errors.error_event))
        chunks = await prime(speech.encoded(prepared, fmt, sample_rate=rate))
        return ClosingStreamingResponse(
            audio_bytes_logging_errors(chunks), media_type=CONTENT_TYPES[fmt]
        )

    async def create_transcription(
        self, form: TranscriptionForm, owner_id: str, service: TranscriptionService
    ) -> Response:
        fmt = convert.response_format(form)
        request = await converted(
            lambda: convert.transcription_request(form, owner_id), *form.known_speaker_references
        )
        prepared = await service.prepare(request)
        if form.stream:
            events = await prime(transcript_events(prepared, service, fmt == convert.DIARIZED))
            return sse_response(with_error_event(events, errors.error_event))
        return text_response(await service.transcribe(prepared), fmt, prepared)

    def chat_request(self, body: dict[str, Any], owner_id: str) -> tuple[CoreChatRequest, bool]:
        wire = parse(ChatCompletionRequest, body)
        return convert.chat_request(wire, owner_id), wire.stream


SHAPE = OpenAIShape()


def text_response(
    transcript: Transcript,
    fmt: str,
    prepared: PreparedTranscription,
    *,
    translate: bool = False,
) -> Response:
    """The transcript in ``response_format``."""
    if fmt == "text":
        return PlainTextResponse(transcript.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(to_srt(transcript.segments))
    if fmt == "vtt":
        return PlainTextResponse(to_vtt(transcript.segments), media_type="text/vtt")
    if fmt == convert.DIARIZED:
        return JSONResponse(convert.diarized(transcript).model_dump())
    if fmt == "verbose_json":
        words = prepared.options.word_timestamps
        body = convert.verbose(transcript, words, translate=translate)
        absent = {k for k in ("words", "usage") if getattr(body, k) is None}
        return JSONResponse(body.model_dump(exclude=absent))
    if translate:
        return JSONResponse(Translation(text=transcript.text).model_dump())
    return JSONResponse(convert.transcription(transcript).model_dump())


async def speech_events(
    speech: SpeechService, prepared: PreparedSpeech, fmt: AudioFormat, rate: int | None
) -> AsyncIterator[bytes]:
    async with closing(speech.encoded(prepared, fmt, sample_rate=rate)) as chunks:
        async for data in chunks:
            yield sse(SpeechAudioDelta(audio=encode_base64(data)).model_dump())
    yield sse(SpeechAudioDone(usage=convert.speech_usage(prepared)).model_dump())


async def transcript_events(
    prepared: PreparedTranscription, service: TranscriptionService, diarized: bool = False
) -> AsyncIterator[bytes]:
    """Deltas, then the whole text; ``diarized``: each segment's deltas then its
    ``transcript.text.segment`` event."""
    _, segments = await service.stream(prepared)
    texts: list[str] = []
    async with closing(segments):
        async for segment in segments:
            piece = segment.text.strip()
            if not piece:
                continue
            segment_id = f"seg_{len(texts)}" if diarized else None
            delta = (" " if texts else "") + piece
            yield sse(TranscriptTextDelta(delta=delta, segment_id=segment_id).model_dump())
            texts.append(piece)
            if segment_id is not None:
                yield sse(diarized_segment(segment, segment_id, piece).model_dump())
    yield sse(TranscriptTextDone(text=" ".join(texts)).model_dump())


def diarized_segment(segment: Segment, segment_id: str, text: str) -> DiarizedSegment:
    start, end = round(segment.start, 3), round(segment.end, 3)
    speaker = segment.speaker or "A"
    return DiarizedSegment(id=segment_id, start=start, end=end, text=text, speaker=speaker)


TRANSLATION_CONTENT = {
    "application/json": {
        "schema": {"oneOf": [inline_schema(Translation), inline_schema(VerboseTranscription)]}
    },
    **{media_type: {"schema": schema} for media_type, schema in TEXT_CONTENT.items()},
}


@router.post(
    TRANSLATIONS,
    tags=["transcription"],
    response_model=None,
    openapi_extra={
        "requestBody": form_request_body(TranslationFormFields),
        "responses": {
            "200": {"description": "Successful Response", "content": TRANSLATION_CONTENT}
        },
    },
)
async def create_translation(
    request: Request, owner: CurrentOwner, service: TranscriptionDep
) -> Response:
    """Translate speech in any language into English text (``response_format`` json, text,
    srt, vtt or verbose_json), with an engine that can translate (faster-whisper)."""
    form = await read_transcription_form(request)
    fmt = convert.response_format(form)
    core = convert.transcription_request(form, owner.id, translate=True)
    prepared = await service.prepare(core)
    transcript = await service.transcribe(prepared)
    return text_response(transcript, fmt, prepared, translate=True)
