"""Mistral's realtime speech: ``WS /v1/audio/speech/realtime?model=...``.

``session.created`` first (every field the SDK requires); ``session.update`` sets the voice (or
``ref_audio``), ``response_format`` and ``streaming_mode`` before the first text; text comes in
``input_text.append`` fragments, ``input_text.flush`` speaks what is held, ``input_text.end``
finishes. Audio goes out as ``speech.audio.delta`` while later text still arrives, and
``speech.audio.done`` (with usage) ends the session. An unknown voice closes the socket with
1008 and the message (what the SDK expects); other bad messages get an ``error`` event.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel, ValidationError

from voxserve.api.adapters.mistral.errors import render_error
from voxserve.api.adapters.mistral.protocol import realtime_speech as wire
from voxserve.api.adapters.mistral.protocol.realtime import ErrorDetail, ErrorEvent
from voxserve.api.adapters.mistral.protocol.speech import (
    SpeechAudioDelta,
    SpeechAudioDone,
    SpeechUsage,
)
from voxserve.api.deps import ClientTokensSocketDep, RealtimeSpeechDep, SocketAuthDep
from voxserve.api.sockets import (
    EventSender,
    MessageReader,
    authenticate,
    serve_admitted,
    serve_session,
)
from voxserve.core.b64 import converted, decode_base64, encode_base64
from voxserve.core.ids import prefixed_id
from voxserve.core.realtime_speech import (
    AudioChunk,
    SpeechFailed,
    SpeechSession,
    SpeechSessionConfig,
)
from voxserve.errors import InvalidRequest, NotFound, ValidationFailed, VoxError

router = APIRouter()
POLICY = 1008


@router.websocket("/v1/audio/speech/realtime")
async def speak_realtime(
    websocket: WebSocket,
    service: RealtimeSpeechDep,
    auth: SocketAuthDep,
    tokens: ClientTokensSocketDep,
    model: str | None = Query(None),
) -> None:
    who = await authenticate(websocket, auth, tokens, render_error, model)
    if who is None:
        return

    async def serve(_: None) -> None:
        max_bytes = service.gate.settings.max_message_bytes
        socket = SpeechSocket(websocket, max_bytes, who.model or "voxserve-tts")
        async with service.session(who.owner_id, who.model) as session:
            await socket.serve(session)

    check = partial(service.check_model, who.model)
    await serve_admitted(websocket, who, service.gate, render_error, check, serve)


class SpeechSocket:
    """One accepted socket: client text to the session, its audio to the client."""

    def __init__(self, websocket: WebSocket, max_bytes: int, model: str) -> None:
        self._sender = EventSender(websocket)
        # Text may pause for long (an LLM thinking): no idle timeout on speech sessions.
        self._reader = MessageReader(websocket, max_bytes=max_bytes, idle_seconds=1.0)
        self._reader.idle_enabled = False
        self._model = model
        self._request_id = prefixed_id("rt")

    async def serve(self, session: SpeechSession) -> None:
        await self._send(self._session_event("session.created", session.config))
        await serve_session(
            self._sender,
            self._reader,
            lambda message: self._handle(session, message),
            lambda: self._write(session),
            self._send_error,
        )

    async def _handle(self, session: SpeechSession, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "input_text.append":
            session.append(_text(message, required=True))
        elif kind == "input_text.flush":
            session.flush(_text(message, required=False))
        elif kind == "input_text.end":
            session.end()
        elif kind == "session.update":
            await self._update(session, message.get("session"))
        else:
            raise InvalidRequest(f"Unknown message type '{kind}'.", field="type")

    async def _update(self, session: SpeechSession, raw: object) -> None:
        ref_audio = raw.get("ref_audio") if isinstance(raw, dict) else None
        big = ref_audio if isinstance(ref_audio, str) else None
        config = await converted(lambda: updated_config(session.config, raw), big)
        try:
            await session.update(config)
        except NotFound as exc:  # an unknown voice: the SDK expects a policy close
            await self._sender.close(POLICY, exc.message)
            return
        await self._send(self._session_event("session.updated", session.config))

    async def _write(self, session: SpeechSession) -> None:
        async for event in session.events():
            if isinstance(event, AudioChunk):
                delta = SpeechAudioDelta(audio_data=encode_base64(event.data))
                if not await self._sender.send(delta.model_dump(mode="json")):
                    return  # the client is gone: this chunk is not owed
                session.delivered(event)
            elif isinstance(event, SpeechFailed):
                await self._send_error(event.error)
                return
            else:
                n = event.characters
                usage = SpeechUsage(prompt_tokens=n, total_tokens=n, prompt_characters=n)
                await self._send(SpeechAudioDone(usage=usage))
                return

    def _session_event(self, kind: str, config: SpeechSessionConfig) -> wire.SpeechSessionEvent:
        session = wire.SpeechSession(
            request_id=self._request_id,
            model=self._model,
            voice=config.voice,
            is_ref_audio=config.ref_audio is not None,
            streaming_mode=config.streaming_mode,
            response_format=config.response_format,
        )
        return wire.SpeechSessionEvent(type=kind, session=session)

    async def _send(self, event: BaseModel) -> None:
        await self._sender.send(event.model_dump(mode="json"))

    async def _send_error(self, exc: VoxError) -> None:
        await self._send(ErrorEvent(error=ErrorDetail(message=exc.message, code=exc.status)))


def _text(message: dict[str, Any], *, required: bool) -> str:
    text = message.get("text")
    if text is None and not required:
        return ""
    if not isinstance(text, str):
        raise ValidationFailed("text: a string is required.", field="text")
    return text


def updated_config(config: SpeechSessionConfig, raw: object) -> SpeechSessionConfig:
    """``config`` with a ``session.update``'s fields applied.

    Raises:
        ValidationFailed: a malformed field (an unknown format or mode, bad base64).
    """
    try:
        update = wire.SpeechSessionUpdate.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"session.{where}: {first['msg']}", field=where) from None
    changes: dict[str, Any] = {}
    if update.voice is not None:
        changes |= {"voice": update.voice, "ref_audio": None}
    if update.ref_audio is not None:
        changes |= {"ref_audio": decode_base64(update.ref_audio, "ref_audio"), "voice": None}
    if update.response_format is not None:
        changes["response_format"] = update.response_format
    if update.streaming_mode is not None:
        changes["streaming_mode"] = update.streaming_mode
    return SpeechSessionConfig(**{**vars(config), **changes})
