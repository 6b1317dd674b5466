"""Mistral's realtime transcription WebSocket (``/v1/audio/transcriptions/realtime``): the
session settings clients send and the events the server sends, as ``mistralai`` 3.7.0 validates
them (a ``session.created`` it cannot validate would make it wait for its timeout)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    """Base of this protocol's wire models (attribute docstrings document the schema)."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class AudioFormat(Wire):
    encoding: str = "pcm_s16le"
    """``pcm_s16le``, ``pcm_s32le``, ``pcm_f16le``, ``pcm_f32le``, ``pcm_mulaw`` or ``pcm_alaw``."""
    sample_rate: int = Field(16000, ge=1000, le=384000)
    """Any rate; the audio is resampled to the engine's."""


class TurnDetection(Wire):
    start_threshold: float = Field(0.5, ge=0, le=1)
    """Speech probability that starts a turn."""
    eager_end_threshold: float = Field(0.5, ge=0, le=1)
    """Below it for half of ``min_silence_ms``: ``turn.eager_end``."""
    end_threshold: float = Field(0.33, ge=0, le=1)
    """Below it for ``min_silence_ms``: ``turn.end`` (reason ``threshold``)."""
    min_silence_ms: int = Field(500, ge=32, le=10000)
    end_timeout_ms: int | None = Field(None, ge=100, le=60000)
    """Below ``eager_end_threshold`` this long: ``turn.end`` (reason ``timeout``); 3000 unset."""


class SessionUpdate(Wire):
    """The settings ``session.update`` may carry (only the keys sent change)."""

    model_config = ConfigDict(extra="forbid")

    audio_format: AudioFormat | None = None
    target_streaming_delay_ms: int | None = None
    """How far the text may run behind the speech."""
    language: str | None = None
    """ISO-639-1; unset detects it once."""
    context_bias: list[str] | None = None
    """Terms to favour."""
    turn_detection: TurnDetection | None = None
    diarize: bool | None = None
    """Speaker tagging: no realtime engine here can (``true`` answers an ``error`` event)."""
    speaker_references: dict[str, str] | None = None
    """Named voice samples for diarization (base64); refused like ``diarize``."""


class Session(Wire):
    """The session as ``session.created`` and ``session.updated`` echo it."""

    request_id: str
    model: str
    audio_format: AudioFormat
    target_streaming_delay_ms: int
    language: str | None = None
    context_bias: list[str] = []
    diarize: bool = False
    turn_detection: TurnDetection | None = None


class SessionEvent(Wire):
    type: Literal["session.created", "session.updated"]
    session: Session


class LanguageEvent(Wire):
    type: Literal["transcription.language"] = "transcription.language"
    audio_language: str
    """The language detected (or fixed by the session), ISO-639-1."""


class TextDeltaEvent(Wire):
    type: Literal["transcription.text.delta"] = "transcription.text.delta"
    text: str
    """Newly final text; joined in order, the deltas are the transcript."""


class SegmentEvent(Wire):
    type: Literal["transcription.segment"] = "transcription.segment"
    text: str
    start: float | None
    """Seconds since the session's first audio."""
    end: float | None


class Usage(Wire):
    prompt_audio_seconds: int = 0
    """Audio seconds heard (rounded up)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class DoneSegment(Wire):
    text: str
    start: float
    end: float
    type: Literal["transcription_segment"] = "transcription_segment"


class DoneEvent(Wire):
    type: Literal["transcription.done"] = "transcription.done"
    model: str
    text: str
    """The whole transcript."""
    language: str | None
    """Always present (null when no word was heard)."""
    segments: list[DoneSegment]
    usage: Usage


class TurnEvent(Wire):
    type: Literal["turn.start", "turn.eager_end", "turn.resume"]
    time_s: float
    """Session time of the event, in seconds."""


class TurnEndEvent(Wire):
    type: Literal["turn.end"] = "turn.end"
    time_s: float
    end_reason: Literal["threshold", "timeout"]


class ErrorDetail(Wire):
    message: str
    code: int
    """The HTTP status the error would answer (408: idle timeout)."""


class ErrorEvent(Wire):
    type: Literal["error"] = "error"
    error: ErrorDetail


class ClientSessionRequest(Wire):
    """``POST /v1/client/sessions``: a browser token for realtime sockets."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "purpose": "realtime",
                    "model": "voxtral-mini-transcribe-realtime-2602",
                    "ttl_seconds": 900,
                }
            ]
        },
    )

    purpose: Literal["realtime"] = "realtime"
    model: str = Field(min_length=1)
    """The model the token opens sockets for (and no other)."""
    ttl_seconds: int | None = None
    """Lifetime; 900 s when unset."""


class ClientSecret(Wire):
    value: str
    """Offer it as ``Sec-WebSocket-Protocol: realtime, <value>``."""
    expires_at: datetime


class ClientSessionResponse(Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "client.session",
                    "purpose": "realtime",
                    "expires_at": "2026-01-01T12:15:00Z",
                    "client_secret": {"value": "vxrt-...", "expires_at": "2026-01-01T12:15:00Z"},
                }
            ]
        }
    )

    object: Literal["client.session"] = "client.session"
    purpose: Literal["realtime"] = "realtime"
    expires_at: datetime
    client_secret: ClientSecret
