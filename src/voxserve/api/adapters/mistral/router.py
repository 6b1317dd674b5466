"""The Mistral shape: its voice library (``/v1/audio/voices``, ``/v2/audio/voices``) and files
(``/v1/files``) routes, and ``MistralShape``, its side of the shared ``/v1`` routes (speech,
transcription, chat; see ``api.shapes``). Errors render through ``errors.render_error``."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from voxserve.api.adapters.mistral import convert, errors
from voxserve.api.adapters.mistral.protocol.chat import ChatCompletionRequest
from voxserve.api.adapters.mistral.protocol.errors import ErrorResponse, StreamError
from voxserve.api.adapters.mistral.protocol.files import (
    DeletedFile,
    FileList,
    FileObject,
    RetrievedFile,
    SignedUrl,
)
from voxserve.api.adapters.mistral.protocol.speech import (
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechRequest,
    SpeechResponse,
)
from voxserve.api.adapters.mistral.protocol.transcription import (
    TranscriptionDone,
    TranscriptionLanguageEvent,
    TranscriptionResponse,
    TranscriptionSegment,
    TranscriptionSegmentEvent,
    TranscriptionTextDelta,
)
from voxserve.api.adapters.mistral.protocol.voices import (
    GenderLiteral,
    VoiceCreateRequest,
    VoiceListPage,
    VoiceListResponse,
    VoiceResponse,
    VoiceUpdateRequest,
)
from voxserve.api.bodies import inline_schema, json_body, parse
from voxserve.api.deps import (
    CurrentOwner,
    DefaultSpeechEngineDep,
    FileServiceDep,
    SettingsDep,
    VoiceServiceDep,
    public_base_url,
)
from voxserve.api.forms import TranscriptionForm
from voxserve.api.shapes import ErrorInfo, SharedDocs
from voxserve.api.streaming import (
    ClosingStreamingResponse,
    closing,
    prime,
    sse,
    sse_response,
    with_error_event,
)
from voxserve.api.wire import MAX_OFFSET, MAX_PAGE, CleanText, check_text
from voxserve.audio.types import AudioFormat
from voxserve.core.b64 import converted, encode_base64
from voxserve.core.chat import ChatCompletionRequest as CoreChatRequest
from voxserve.core.files import MAX_EXPIRY_HOURS
from voxserve.core.speech import PreparedSpeech, SpeechService
from voxserve.core.transcription import PreparedTranscription, TranscriptionService, join_text
from voxserve.core.types import FileRecord, Segment, VoiceQuery
from voxserve.errors import VoxError
from voxserve.offload import run_in_thread

PCM_RATE = 24000
"""Mistral's ``pcm`` is float32 at 24 kHz whatever the engine's rate (clients hard-code it)."""
VoiceTypeParam = Literal["all", "custom", "preset"]
BINARY = {"type": "string", "format": "binary"}
VoiceId = Annotated[
    str, Path(description="A preset, custom voice or hosted id.", examples=["en_paul_neutral"])
]
FileId = Annotated[str, Path(description="An uploaded file's id.", examples=["file-3f9a1c"])]
router = APIRouter()


class MistralShape:
    """Mistral's envelope, and its side of the shared speech, transcription and chat routes."""

    name = "mistral"
    prefixes: tuple[str, ...] = ()
    error_model = ErrorResponse
    docs = SharedDocs(
        speech_request=SpeechRequest,
        speech_responses={
            "application/json": inline_schema(SpeechResponse),
            "text/event-stream": {
                "oneOf": [
                    inline_schema(m) for m in (SpeechAudioDelta, SpeechAudioDone, StreamError)
                ]
            },
        },
        transcription_responses={
            "application/json": inline_schema(TranscriptionResponse),
            "text/event-stream": {
                "oneOf": [
                    inline_schema(m)
                    for m in (
                        TranscriptionLanguageEvent,
                        TranscriptionTextDelta,
                        TranscriptionSegmentEvent,
                        TranscriptionDone,
                        StreamError,
                    )
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
        request = await converted(lambda: convert.speech_request(wire, owner_id), wire.ref_audio)
        prepared = await speech.prepare(request)
        fmt: AudioFormat = wire.response_format
        rate = PCM_RATE if fmt == "pcm" else None
        if not wire.stream:
            audio = await speech.synthesize(prepared, fmt, sample_rate=rate)
            return JSONResponse(SpeechResponse(audio_data=encode_base64(audio)).model_dump())
        events = await prime(speech_events(speech, prepared, fmt, rate))
        return sse_response(with_error_event(events, errors.error_event))

    async def create_transcription(
        self, form: TranscriptionForm, owner_id: str, service: TranscriptionService
    ) -> Response:
        request = await converted(
            lambda: convert.transcription_request(form, owner_id),
            *(form.speaker_references or {}).values(),
        )
        prepared = await service.prepare(request)
        model = form.model or prepared.engine.name
        if form.stream:
            events = await prime(transcription_events(prepared, model, service))
            return sse_response(with_error_event(events, errors.error_event))
        transcript = await service.transcribe(prepared)
        words = prepared.options.word_timestamps
        segments = [convert.segment(s, words) for s in transcript.segments]
        body = convert.transcription_response(
            prepared, model, transcript.text, transcript.language, segments
        )
        return JSONResponse(body.model_dump())

    def chat_request(self, body: dict[str, Any], owner_id: str) -> tuple[CoreChatRequest, bool]:
        wire = parse(ChatCompletionRequest, body)
        return convert.chat_request(wire, owner_id), wire.stream


SHAPE = MistralShape()


async def speech_events(
    speech: SpeechService, prepared: PreparedSpeech, fmt: AudioFormat, rate: int | None
) -> AsyncIterator[bytes]:
    async with closing(speech.encoded(prepared, fmt, sample_rate=rate)) as chunks:
        async for data in chunks:
            yield event(SpeechAudioDelta(audio_data=encode_base64(data)))
    yield event(SpeechAudioDone(usage=convert.speech_usage(prepared)))


def event(body: Any) -> bytes:
    """An SSE message whose ``event:`` line is the body's ``type`` (the SDK picks the typed
    event by it)."""
    return sse(body.model_dump(), body.type)


async def transcription_events(
    prepared: PreparedTranscription, model: str, service: TranscriptionService
) -> AsyncIterator[bytes]:
    words = prepared.options.word_timestamps
    info, segments = await service.stream(prepared)
    yield event(TranscriptionLanguageEvent(audio_language=info.language))
    seen: list[Segment] = []
    bodies: list[TranscriptionSegment] = []  # converted once: the .done event lists them again
    async with closing(segments):
        async for segment in segments:
            delta = segment.text.strip()
            if delta:
                yield event(TranscriptionTextDelta(text=delta if not seen else " " + delta))
            seen.append(segment)
            bodies.append(convert.segment(segment, words))
            fields = bodies[-1].model_dump(
                exclude={"type"}
            )  # the segment's own type is not the event's
            yield event(TranscriptionSegmentEvent(**fields))
    done = convert.transcription_response(prepared, model, join_text(seen), info.language, bodies)
    yield event(TranscriptionDone(**done.model_dump(exclude={"segments"}), segments=bodies))


JSON_VOICE_CREATE = {
    "required": True,
    "content": {"application/json": {"schema": inline_schema(VoiceCreateRequest)}},
}
"""The create body's documentation: the route reads the body the wire rules already parsed (it
may hold megabytes of base64), so FastAPI does not document it from a body parameter."""


@router.get("/v1/audio/voices", response_model=VoiceListResponse, tags=["voices (Mistral)"])
async def list_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    type: VoiceTypeParam = "all",
) -> VoiceListResponse:
    """List voices with offset pagination (deprecated upstream in favour of v2)."""
    items, total = await voices.list(
        owner.id, type=type, query=VoiceQuery(), offset=offset, limit=limit
    )
    return VoiceListResponse(
        items=[convert.voice_response(v) for v in items],
        total=total,
        page=offset // limit + 1,
        page_size=limit,
        total_pages=math.ceil(total / limit),
    )


@router.get("/v2/audio/voices", response_model=VoiceListPage, tags=["voices (Mistral)"])
async def search_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    page_size: Annotated[int, Query(ge=1, le=100)] = 10,
    page_token: str | None = None,
    type: VoiceTypeParam = "all",
    gender: Annotated[list[GenderLiteral] | None, Query()] = None,
    language: Annotated[list[str] | None, Query()] = None,
    query: str | None = None,
    kind: Literal["ivc", "pvc"] | None = None,
) -> VoiceListPage:
    """Search voices with an opaque cursor (``next_page_token``)."""
    offset = convert.decode_cursor(page_token)
    if kind == "pvc":
        return VoiceListPage(data=[], next_page_token=None)  # no professional clones here
    filters = VoiceQuery(text=query, genders=tuple(gender or ()), languages=tuple(language or ()))
    scope = "custom" if kind == "ivc" else type
    items, total = await voices.list(
        owner.id, type=scope, query=filters, offset=offset, limit=page_size
    )
    following = offset + len(items)
    return VoiceListPage(
        data=[convert.voice_response(v) for v in items],
        next_page_token=convert.encode_cursor(following) if following < total else None,
    )


@router.post(
    "/v1/audio/voices",
    response_model=VoiceResponse,
    tags=["voices (Mistral)"],
    openapi_extra={"requestBody": JSON_VOICE_CREATE},
)
async def create_voice(
    request: Request, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    """Clone a voice from a base64 sample (answers 200, as the SDK requires)."""
    body = parse(VoiceCreateRequest, await json_body(request))  # the wire rules' parse, reused
    draft = await run_in_thread(convert.voice_draft, body)  # megabytes of base64: off the loop
    return convert.voice_response(await voices.create(owner.id, draft))


@router.get("/v1/audio/voices/{voice_id}", response_model=VoiceResponse, tags=["voices (Mistral)"])
async def get_voice(
    voice_id: str,
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    settings: SettingsDep,
    engine: DefaultSpeechEngineDep,
) -> VoiceResponse:
    """A voice by any id speech accepts: a preset, a custom voice, a hosted name
    (``en_paul_neutral``, ``alloy``) or a configured alias; ``maps_to`` names the local voice."""
    pinned = settings.engines.voice_aliases
    return await convert.voice_or_alias(voices, owner.id, voice_id, engine=engine, pinned=pinned)


@router.patch(
    "/v1/audio/voices/{voice_id}", response_model=VoiceResponse, tags=["voices (Mistral)"]
)
async def update_voice(
    voice_id: str, body: VoiceUpdateRequest, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    """Change a custom voice's fields (only those sent) and add emotion samples."""
    changes = convert.voice_changes(body.model_dump(exclude_unset=True))
    emotions = body.emotion_samples
    samples = await converted(lambda: convert.emotion_samples(emotions), *(emotions or {}).values())
    return convert.voice_response(await voices.update(owner.id, voice_id, changes, samples))


@router.delete(
    "/v1/audio/voices/{voice_id}", response_model=VoiceResponse, tags=["voices (Mistral)"]
)
async def delete_voice(
    voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep
) -> VoiceResponse:
    """Delete a custom voice and its samples; answers the deleted voice."""
    return convert.voice_response(await voices.delete(owner.id, voice_id))


@router.get(
    "/v1/audio/voices/{voice_id}/sample",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {"schema": BINARY}}}},
    tags=["voices (Mistral)"],
)
async def get_voice_sample(
    voice_id: VoiceId, owner: CurrentOwner, voices: VoiceServiceDep
) -> Response:
    """The voice's sample as mono 16-bit WAV (``Content-Type: audio/wav`` exactly)."""
    return Response(await voices.sample(owner.id, voice_id), media_type="audio/wav")


@router.post("/v1/files", response_model=FileObject, tags=["files"])
async def upload_file(
    owner: CurrentOwner,
    files: FileServiceDep,
    file: Annotated[UploadFile, File(description="The file (audio for transcription and chat).")],
    purpose: Annotated[CleanText, Form(examples=["audio"])] = "audio",
    visibility: Annotated[CleanText | None, Form(examples=["user"])] = None,
) -> FileObject:
    """Upload a file; use its id as ``file_id`` in transcriptions, or get a signed URL. The file
    name is kept as data, without its path parts."""
    record = await files.upload(
        owner.id,
        filename=check_text(file.filename or "upload", "file"),
        data=file.file,  # streamed from Starlette's spooled file, never read whole
        content_type=check_text(file.content_type or "", "content_type") or None,
        purpose=purpose,
    )
    return convert.file_object(record)


@router.get("/v1/files", response_model=FileList, tags=["files"])
async def list_files(
    owner: CurrentOwner,
    files: FileServiceDep,
    page: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 0,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    purpose: str | None = None,
) -> FileList:
    """The owner's files, newest first."""
    records, total = await files.list(
        owner.id, offset=page * page_size, limit=page_size, purpose=purpose
    )
    return FileList(data=[convert.file_object(r) for r in records], total=total)


@router.get("/v1/files/{file_id}", response_model=RetrievedFile, tags=["files"])
async def retrieve_file(file_id: str, owner: CurrentOwner, files: FileServiceDep) -> RetrievedFile:
    """One file's metadata."""
    record = await files.get(owner.id, file_id)
    return RetrievedFile(**convert.file_object(record).model_dump())


@router.delete("/v1/files/{file_id}", response_model=DeletedFile, tags=["files"])
async def delete_file(file_id: str, owner: CurrentOwner, files: FileServiceDep) -> DeletedFile:
    """Delete a file and its content."""
    return DeletedFile(id=(await files.delete(owner.id, file_id)).id)


@router.get(
    "/v1/files/{file_id}/content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {"schema": BINARY}}}},
    tags=["files"],
)
async def download_file(file_id: FileId, owner: CurrentOwner, files: FileServiceDep) -> Response:
    """The file's bytes."""
    record, chunks = await files.download(owner.id, file_id)
    return file_response(record, chunks, media_type="application/octet-stream")  # the SDK wants it


@router.get("/v1/files/{file_id}/url", response_model=SignedUrl, tags=["files"])
async def get_signed_url(
    file_id: str,
    request: Request,
    owner: CurrentOwner,
    files: FileServiceDep,
    expiry: Annotated[
        int, Query(ge=1, le=MAX_EXPIRY_HOURS, description="Hours the URL stays valid (1 to 168).")
    ] = 24,
) -> SignedUrl:
    """A URL that serves the file without an API key until it expires."""
    record = await files.get(owner.id, file_id)
    base = public_base_url(request)
    return SignedUrl(url=files.signed_url(record, base_url=base, expiry_hours=expiry))


@router.get("/v1/files/{file_id}/signed", response_class=Response, include_in_schema=False)
async def open_signed_url(
    file_id: str, files: FileServiceDep, expires: str = "", signature: str = ""
) -> Response:
    record, chunks = await files.download_signed(file_id, expires, signature)
    return file_response(record, chunks)


def file_response(
    record: FileRecord, chunks: AsyncIterator[bytes], media_type: str | None = None
) -> Response:
    """The file streamed as it is read from the blob store (never whole in memory)."""
    headers = {
        "Content-Disposition": convert.content_disposition(record.filename),
        "Content-Length": str(record.bytes),
    }
    media_type = media_type or record.content_type or "application/octet-stream"
    return ClosingStreamingResponse(chunks, media_type=media_type, headers=headers)
