"""Mistral's realtime transcription: ``WS /v1/audio/transcriptions/realtime?model=...``.

The handshake authenticates, picks the engine and takes a session place (refused with an HTTP
status otherwise); then ``session.created`` goes first. Client messages become calls on the
core ``TranscriptionSession``; its events become Mistral's. A bad message (malformed JSON, an
unknown ``type``, bad base64, an oversized chunk, settings after audio started) answers an
``error`` event and the session goes on; no audio for the idle timeout ends it with an
``error`` event (code 408) and close 1000.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, ValidationError

from voxserve.api.adapters.mistral.errors import render_error
from voxserve.api.adapters.mistral.protocol import realtime as wire
from voxserve.api.deps import ClientTokensSocketDep, RealtimeSTTDep, SocketAuthDep
from voxserve.api.sockets import (
    EventSender,
    MessageReader,
    authenticate,
    serve_admitted,
    serve_session,
)
from voxserve.audio.pcm import PCM_ENCODINGS
from voxserve.core.b64 import decode_base64
from voxserve.core.ids import prefixed_id
from voxserve.core.realtime import STREAMING_DELAY_RANGE_MS, RealtimeTranscriptionService
from voxserve.core.realtime_stt import (
    AudioInputFormat,
    LanguageDetected,
    RealtimeSTTConfig,
    RealtimeSTTEvent,
    SegmentDone,
    SessionFailed,
    TextDelta,
    TranscriptionDone,
    TranscriptionSession,
)
from voxserve.core.transcription import normalise_language
from voxserve.core.turns import TurnEvent, TurnSettings
from voxserve.core.types import STTHandle
from voxserve.errors import InvalidRequest, PayloadTooLarge, Unsupported, ValidationFailed, VoxError

router = APIRouter()
DELAY_RANGE_MS = STREAMING_DELAY_RANGE_MS
DIARIZE_HINT = (
    "Realtime sessions cannot diarize: the speaker turns need the whole recording. Omit diarize "
    "and speaker_references here, and send the recording to POST /v1/audio/transcriptions with "
    "diarize=true."
)


@router.websocket("/v1/audio/transcriptions/realtime")
async def transcribe_realtime(
    websocket: WebSocket,
    service: RealtimeSTTDep,
    auth: SocketAuthDep,
    tokens: ClientTokensSocketDep,
    model: str | None = Query(None),
) -> None:
    who = await authenticate(websocket, auth, tokens, render_error, model)
    if who is None:
        return

    async def serve(engine: STTHandle) -> None:
        socket = TranscriptionSocket(websocket, service, who.model or engine.name)
        async with service.session(who.owner_id, engine, RealtimeSTTConfig()) as session:
            await socket.serve(session)

    check = partial(service.pick_engine, who.model)
    await serve_admitted(websocket, who, service.gate, render_error, check, serve)


class TranscriptionSocket:
    """One accepted socket: a reader of client messages and a writer of session events."""

    def __init__(self, websocket: WebSocket, service: RealtimeTranscriptionService, model: str):
        settings = service.settings
        self._sender = EventSender(websocket)
        self._reader = MessageReader(
            websocket,
            max_bytes=settings.max_message_bytes,
            idle_seconds=settings.idle_timeout_seconds,
        )
        self._max_chunk = settings.max_audio_chunk_bytes
        self._model = model
        self._request_id = prefixed_id("rt")

    async def serve(self, session: TranscriptionSession) -> None:
        await self._send(self._session_event("session.created", session.config))
        await serve_session(
            self._sender,
            self._reader,
            lambda message: self._handle(session, message),
            lambda: self._write(session),
            self._send_error,
        )

    async def _handle(self, session: TranscriptionSession, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "input_audio.append":
            await session.append(self._audio(message))
            self._reader.audio_arrived()
        elif kind == "input_audio.flush":
            session.flush()
        elif kind == "input_audio.end":
            session.end()
            self._reader.idle_enabled = False
        elif kind == "session.update":
            session.update(updated_config(session.config, message.get("session")))
            await self._send(self._session_event("session.updated", session.config))
        else:
            raise InvalidRequest(f"Unknown message type '{kind}'.", field="type")

    def _audio(self, message: dict[str, Any]) -> bytes:
        audio = message.get("audio")
        if not isinstance(audio, str):
            raise ValidationFailed("audio: a base64 string is required.", field="audio")
        data = decode_base64(audio, "audio")
        if len(data) > self._max_chunk:
            raise PayloadTooLarge(
                f"audio: at most {self._max_chunk} decoded bytes per message "
                f"(got {len(data)}); send smaller chunks."
            )
        return data

    async def _write(self, session: TranscriptionSession) -> None:
        async for event in session.events():
            if isinstance(event, SegmentDone) and event.empty:
                continue
            if isinstance(event, SessionFailed):
                await self._send_error(event.error)
                return
            await self._send(self._event(event))
            if isinstance(event, TranscriptionDone):
                return

    def _event(self, event: RealtimeSTTEvent) -> BaseModel:
        if isinstance(event, LanguageDetected):
            return wire.LanguageEvent(audio_language=event.language)
        if isinstance(event, TextDelta):
            return wire.TextDeltaEvent(text=event.text)
        if isinstance(event, SegmentDone):
            s = event.segment
            return wire.SegmentEvent(text=s.text, start=s.start, end=s.end)
        if isinstance(event, TurnEvent):
            return turn_event(event)
        assert isinstance(event, TranscriptionDone)
        return self._done(event)

    def _done(self, done: TranscriptionDone) -> wire.DoneEvent:
        segments = [wire.DoneSegment(text=s.text, start=s.start, end=s.end) for s in done.segments]
        usage = wire.Usage(prompt_audio_seconds=math.ceil(done.audio_seconds))
        return wire.DoneEvent(
            model=self._model,
            text=done.text,
            language=done.language,
            segments=segments,
            usage=usage,
        )

    def _session_event(self, kind: str, config: RealtimeSTTConfig) -> wire.SessionEvent:
        fmt = config.audio_format
        turns = config.turn_detection
        session = wire.Session(
            request_id=self._request_id,
            model=self._model,
            audio_format=wire.AudioFormat(encoding=fmt.encoding, sample_rate=fmt.sample_rate),
            target_streaming_delay_ms=config.target_delay_ms,
            language=config.language,
            context_bias=list(config.context_bias),
            turn_detection=wire.TurnDetection(**vars(turns)) if turns else None,
        )
        return wire.SessionEvent(type=kind, session=session)

    async def _send(self, event: BaseModel) -> None:
        await self._sender.send(event.model_dump(mode="json"))

    async def _send_error(self, exc: VoxError) -> None:
        error = wire.ErrorDetail(message=exc.message, code=exc.status)
        await self._send(wire.ErrorEvent(error=error))


def turn_event(event: TurnEvent) -> BaseModel:
    if event.kind == "end":
        return wire.TurnEndEvent(time_s=event.time_s, end_reason=event.end_reason or "threshold")
    return wire.TurnEvent(type=f"turn.{event.kind}", time_s=event.time_s)


def updated_config(config: RealtimeSTTConfig, raw: object) -> RealtimeSTTConfig:
    """``config`` with a ``session.update``'s fields applied.

    Raises:
        ValidationFailed: a malformed field. Unsupported: diarization.
    """
    try:
        update = wire.SessionUpdate.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"session.{where}: {first['msg']}", field=where) from None
    if update.diarize or update.speaker_references:
        raise Unsupported(DIARIZE_HINT, field="diarize")
    changes: dict[str, Any] = {}
    if update.audio_format is not None:
        changes["audio_format"] = audio_format(update.audio_format)
    if update.target_streaming_delay_ms is not None:
        changes["target_delay_ms"] = streaming_delay(update.target_streaming_delay_ms)
    if update.language is not None:
        changes["language"] = normalise_language(update.language)
    if update.context_bias is not None:
        changes["context_bias"] = tuple(update.context_bias)
    if update.turn_detection is not None:
        changes["turn_detection"] = turn_settings(update.turn_detection)
    return RealtimeSTTConfig(**{**vars(config), **changes})


def audio_format(fmt: wire.AudioFormat) -> AudioInputFormat:
    if fmt.encoding not in PCM_ENCODINGS:
        names = ", ".join(PCM_ENCODINGS)
        raise ValidationFailed(
            f"audio_format.encoding: '{fmt.encoding}' is not one of {names}.",
            field="audio_format",
        )
    return AudioInputFormat(fmt.encoding, fmt.sample_rate)


def streaming_delay(ms: int) -> int:
    low, high = DELAY_RANGE_MS
    if not low <= ms <= high:
        raise ValidationFailed(
            f"target_streaming_delay_ms: {ms} is outside {low}-{high}.",
            field="target_streaming_delay_ms",
        )
    return ms


def turn_settings(turns: wire.TurnDetection) -> TurnSettings:
    fields = turns.model_dump(exclude_none=True)
    return TurnSettings(**fields)
