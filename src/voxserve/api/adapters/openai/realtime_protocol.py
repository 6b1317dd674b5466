"""OpenAI's realtime transcription WebSocket (``/v1/realtime?intent=transcription``, the GA
protocol): the session clients configure and the events the server sends. Beta-era input
(``transcription_session.update`` with top-level ``input_audio_format`` and
``input_audio_transcription``) is read too; output is always GA."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    """Base of this protocol's wire models (attribute docstrings document the schema)."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class InputFormat(Wire):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    """``audio/pcm``: 16-bit little-endian at ``rate``; ``pcmu``/``pcma``: G.711 at 8 kHz."""
    rate: int = Field(24000, ge=1000, le=384000)


class Transcription(Wire):
    model: str | None = None
    """The transcription model (hosted names resolve to the default engine)."""
    language: str | None = None
    """ISO-639-1; unset detects it."""
    prompt: str | None = None
    """Terms or text to favour."""


class ServerVad(Wire):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    """``semantic_vad`` is served as ``server_vad`` (its eagerness sets the silence)."""
    threshold: float = Field(0.5, ge=0, le=1)
    """Speech probability that starts (and keeps) a turn."""
    prefix_padding_ms: int = 300
    silence_duration_ms: int = Field(500, ge=32, le=10000)
    """Quiet that ends a turn (and commits its audio)."""
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


class AudioInput(Wire):
    format: InputFormat = Field(default_factory=InputFormat)
    transcription: Transcription = Field(default_factory=Transcription)
    turn_detection: ServerVad | None = Field(default_factory=ServerVad)
    """``null``: no detection; the client commits with ``input_audio_buffer.commit``."""
    noise_reduction: dict[str, Any] | None = None


class Audio(Wire):
    input: AudioInput = Field(default_factory=AudioInput)


class TranscriptionSession(Wire):
    """The session as ``session.created``/``session.updated`` echo it."""

    type: Literal["transcription"] = "transcription"
    id: str = ""
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    audio: Audio = Field(default_factory=Audio)
    include: list[str] | None = None


class SessionEvent(Wire):
    type: Literal["session.created", "session.updated"]
    event_id: str
    session: TranscriptionSession


class SpeechStarted(Wire):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    event_id: str
    audio_start_ms: int
    item_id: str


class SpeechStopped(Wire):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    event_id: str
    audio_end_ms: int
    item_id: str


class Committed(Wire):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    event_id: str
    item_id: str
    previous_item_id: str | None


class Cleared(Wire):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"
    event_id: str


class TranscriptDelta(Wire):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    event_id: str
    item_id: str
    content_index: int = 0
    delta: str


class DurationUsage(Wire):
    type: Literal["duration"] = "duration"
    seconds: float
    """Audio seconds of this item."""


class TranscriptCompleted(Wire):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    event_id: str
    item_id: str
    content_index: int = 0
    transcript: str
    usage: DurationUsage


class FailedDetail(Wire):
    type: str
    code: str | None = None
    message: str
    param: str | None = None


class TranscriptFailed(Wire):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    event_id: str
    item_id: str
    content_index: int = 0
    error: FailedDetail


class ErrorDetail(Wire):
    type: str
    """``invalid_request_error`` (4xx) or ``server_error``."""
    code: str | None
    message: str
    param: str | None = None
    event_id: str | None = None
    """The client event that caused it, when it carried an ``event_id``."""


class ErrorEvent(Wire):
    type: Literal["error"] = "error"
    event_id: str
    error: ErrorDetail
