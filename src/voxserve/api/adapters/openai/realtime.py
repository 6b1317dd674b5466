"""OpenAI's realtime transcription: ``WS /v1/realtime?intent=transcription`` (GA protocol).

Each turn is a conversation item: with server VAD, speech start opens it
(``speech_started``), the end of speech commits it (``speech_stopped``, ``committed``); with
``turn_detection: null`` the client commits (``input_audio_buffer.commit``). Deltas and the
``completed`` transcript (with its duration usage) follow per item, in order. Beta-era input
names are accepted (``transcription_session.update``, top-level ``input_audio_format`` and
``input_audio_transcription``); output is GA. Bad messages get an ``error`` event and the
session goes on.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, ValidationError

from voxserve.api.adapters.openai import realtime_protocol as wire
from voxserve.api.adapters.openai.errors import error_type, render_error
from voxserve.api.deps import ClientTokensSocketDep, RealtimeSTTDep, SocketAuthDep
from voxserve.api.sockets import (
    EventSender,
    MessageReader,
    authenticate,
    serve_admitted,
    serve_session,
)
from voxserve.core.b64 import decode_base64
from voxserve.core.ids import prefixed_id
from voxserve.core.realtime import RealtimeTranscriptionService
from voxserve.core.realtime_stt import (
    AudioInputFormat,
    RealtimeSTTConfig,
    SegmentDone,
    SessionFailed,
    TextDelta,
    TranscriptionSession,
)
from voxserve.core.transcription import normalise_language
from voxserve.core.turns import TurnEvent, TurnSettings
from voxserve.core.types import STTHandle
from voxserve.errors import InvalidRequest, PayloadTooLarge, Unsupported, ValidationFailed, VoxError

router = APIRouter()
EAGERNESS_TIMEOUT_MS = {"low": 8000, "medium": 4000, "high": 2000, "auto": 4000}
UPDATE_TYPES = ("session.update", "transcription_session.update")


@router.websocket("/v1/realtime")
async def realtime(
    websocket: WebSocket,
    service: RealtimeSTTDep,
    auth: SocketAuthDep,
    tokens: ClientTokensSocketDep,
    intent: str | None = Query(None),
    model: str | None = Query(None),
) -> None:
    who = await authenticate(websocket, auth, tokens, render_error, model)
    if who is None:
        return

    def check() -> STTHandle:
        if intent != "transcription":
            raise Unsupported(
                "voxserve's /v1/realtime serves transcription sessions only: connect with "
                "?intent=transcription.",
                field="intent",
            )
        return service.pick_engine(who.model)

    async def serve(engine: STTHandle) -> None:
        socket = OpenAITranscriptionSocket(websocket, service, engine.name)
        async with service.session(who.owner_id, engine, socket.config) as session:
            await socket.serve(session)

    await serve_admitted(websocket, who, service.gate, render_error, check, serve)


class OpenAITranscriptionSocket:
    """One accepted socket; items are turns (or client commits), completed in order."""

    def __init__(
        self, websocket: WebSocket, service: RealtimeTranscriptionService, engine: str
    ) -> None:
        settings = service.settings
        self._service = service
        self._engine = engine
        self._sender = EventSender(websocket)
        self._reader = MessageReader(
            websocket,
            max_bytes=settings.max_message_bytes,
            idle_seconds=settings.idle_timeout_seconds,
        )
        self._max_chunk = settings.max_audio_chunk_bytes
        self._wire = wire.TranscriptionSession(id=prefixed_id("sess"))
        self.config = to_config(self._wire, RealtimeSTTConfig())
        self._pending: deque[str] = deque()
        """Items committed or speaking whose transcript is not completed yet, oldest first."""
        self._current: str | None = None
        """The item the audio now arriving belongs to (also in ``_pending``)."""
        self._last_item: str | None = None
        self._uncommitted = False

    async def serve(self, session: TranscriptionSession) -> None:
        await self._send(
            wire.SessionEvent(type="session.created", event_id=_eid(), session=self._wire)
        )
        await serve_session(
            self._sender,
            self._reader,
            lambda message: self._handle(session, message),
            lambda: self._write(session),
            self._send_error,
        )

    async def _handle(self, session: TranscriptionSession, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "input_audio_buffer.append":
            await session.append(self._audio(message))
            self._uncommitted = True
            self._reader.audio_arrived()
        elif kind == "input_audio_buffer.commit":
            await self._commit(session)
        elif kind == "input_audio_buffer.clear":
            session.clear()
            self._uncommitted = False
            await self._send(wire.Cleared(event_id=_eid()))
        elif kind in UPDATE_TYPES:
            await self._update(session, message.get("session"))
        else:
            raise InvalidRequest(f"Unknown event type '{kind}'.", field="type")

    async def _update(self, session: TranscriptionSession, raw: object) -> None:
        self._wire = merged_session(self._wire, raw)
        model = self._wire.audio.input.transcription.model
        if model and self._service.pick_engine(model).name != self._engine:
            raise Unsupported(
                f"The model '{model}' is another engine than this session's "
                f"({self._engine}); name it in the URL: /v1/realtime?intent=transcription"
                f"&model={model}.",
                field="session.audio.input.transcription.model",
            )
        session.update(to_config(self._wire, session.config))
        await self._send(
            wire.SessionEvent(type="session.updated", event_id=_eid(), session=self._wire)
        )

    async def _commit(self, session: TranscriptionSession) -> None:
        if not self._uncommitted:
            raise InvalidRequest(
                "The input audio buffer is empty: append audio before committing.",
                field="input_audio_buffer",
            )
        item, self._current = self._current_item(), None
        session.flush()
        await self._send_committed(item)

    def _current_item(self) -> str:
        """The item taking audio now (opened on first need)."""
        if self._current is None:
            self._current = prefixed_id("item")
            self._pending.append(self._current)
        return self._current

    async def _send_committed(self, item: str) -> None:
        self._uncommitted = False
        previous, self._last_item = self._last_item, item
        await self._send(wire.Committed(event_id=_eid(), item_id=item, previous_item_id=previous))

    def _audio(self, message: dict[str, Any]) -> bytes:
        audio = message.get("audio")
        if not isinstance(audio, str):
            raise ValidationFailed("audio: a base64 string is required.", field="audio")
        data = decode_base64(audio, "audio")
        if len(data) > self._max_chunk:
            raise PayloadTooLarge(
                f"audio: at most {self._max_chunk} decoded bytes per event; send smaller chunks."
            )
        return data

    async def _write(self, session: TranscriptionSession) -> None:
        async for event in session.events():
            if isinstance(event, TurnEvent):
                await self._turn(event)
            elif isinstance(event, TextDelta):
                item = self._pending[0] if self._pending else self._current_item()
                await self._send(
                    wire.TranscriptDelta(event_id=_eid(), item_id=item, delta=event.text)
                )
            elif isinstance(event, SegmentDone):
                await self._completed(event)
            elif isinstance(event, SessionFailed):
                await self._failed(event.error)
                return

    async def _turn(self, event: TurnEvent) -> None:
        ms = round(event.time_s * 1000)
        if event.kind == "start":
            item = self._current_item()
            await self._send(wire.SpeechStarted(event_id=_eid(), audio_start_ms=ms, item_id=item))
        elif event.kind == "end" and self._current is not None:
            item, self._current = self._current, None
            await self._send(wire.SpeechStopped(event_id=_eid(), audio_end_ms=ms, item_id=item))
            await self._send_committed(item)

    async def _completed(self, event: SegmentDone) -> None:
        item = self._pending.popleft() if self._pending else prefixed_id("item")
        segment = event.segment
        usage = wire.DurationUsage(seconds=round(max(segment.end - segment.start, 0.0), 3))
        await self._send(
            wire.TranscriptCompleted(
                event_id=_eid(), item_id=item, transcript=segment.text, usage=usage
            )
        )

    async def _failed(self, error: VoxError) -> None:
        detail = wire.FailedDetail(
            type=error_type(error.status), code=error.code, message=error.message
        )
        for item in self._pending:
            await self._send(wire.TranscriptFailed(event_id=_eid(), item_id=item, error=detail))
        await self._send_error(error)

    async def _send(self, event: BaseModel) -> None:
        await self._sender.send(event.model_dump(mode="json"))

    async def _send_error(self, exc: VoxError) -> None:
        detail = wire.ErrorDetail(
            type=error_type(exc.status), code=exc.code, message=exc.message, param=exc.field
        )
        await self._send(wire.ErrorEvent(event_id=_eid(), error=detail))


def _eid() -> str:
    return prefixed_id("event")


def merged_session(current: wire.TranscriptionSession, raw: object) -> wire.TranscriptionSession:
    """``current`` with a ``session.update``'s fields (GA or beta names) applied.

    Raises:
        ValidationFailed: a malformed field.
    """
    if not isinstance(raw, dict):
        raise ValidationFailed("session: an object is required.", field="session")
    merged = current.model_dump()
    audio_input = merged["audio"]["input"]
    beta = {
        "input_audio_format": "format",
        "input_audio_transcription": "transcription",
        "turn_detection": "turn_detection",
        "input_audio_noise_reduction": "noise_reduction",
    }
    for old, new in beta.items():
        if old in raw:
            audio_input[new] = _beta_format(raw[old]) if old == "input_audio_format" else raw[old]
    given = raw.get("audio", {}).get("input", {}) if isinstance(raw.get("audio"), dict) else {}
    audio_input.update(given if isinstance(given, dict) else {})
    if "include" in raw:
        merged["include"] = raw["include"]
    try:
        return wire.TranscriptionSession.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"session.{where}: {first['msg']}", field=where) from None


def _beta_format(value: object) -> object:
    """Beta's ``input_audio_format`` names: ``pcm16`` (24 kHz), ``g711_ulaw``, ``g711_alaw``."""
    names = {
        "pcm16": {"type": "audio/pcm", "rate": 24000},
        "g711_ulaw": {"type": "audio/pcmu", "rate": 8000},
        "g711_alaw": {"type": "audio/pcma", "rate": 8000},
    }
    return names.get(value, value) if isinstance(value, str) else value


def to_config(session: wire.TranscriptionSession, config: RealtimeSTTConfig) -> RealtimeSTTConfig:
    """The core settings the wire session describes."""
    audio = session.audio.input
    fmt = audio.format
    encoding = {"audio/pcm": "pcm_s16le", "audio/pcmu": "pcm_mulaw", "audio/pcma": "pcm_alaw"}
    rate = fmt.rate if fmt.type == "audio/pcm" else 8000
    prompt = audio.transcription.prompt
    return RealtimeSTTConfig(
        audio_format=AudioInputFormat(encoding[fmt.type], rate),  # type: ignore[arg-type]
        language=normalise_language(audio.transcription.language),
        context_bias=(prompt,) if prompt else (),
        target_delay_ms=config.target_delay_ms,
        turn_detection=turn_settings(audio.turn_detection),
    )


def turn_settings(vad: wire.ServerVad | None) -> TurnSettings | None:
    if vad is None:
        return None
    timeout = EAGERNESS_TIMEOUT_MS.get(vad.eagerness or "", TurnSettings.end_timeout_ms)
    return TurnSettings(
        start_threshold=vad.threshold,
        eager_end_threshold=vad.threshold,
        end_threshold=min(vad.threshold, 0.35),
        min_silence_ms=vad.silence_duration_ms,
        end_timeout_ms=timeout,
    )
