"""Mistral's realtime speech WebSocket (``/v1/audio/speech/realtime``): the session clients set
and the events the server sends, as ``mistralai`` 3.7.0 validates them (``streaming_mode`` and
``response_format`` are closed enums there: any other value would hang the client)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

StreamingMode = Literal["responsive", "long_form"]
ResponseFormat = Literal["pcm", "wav", "mp3", "flac", "opus"]


class Wire(BaseModel):
    """Base of this protocol's wire models (attribute docstrings document the schema)."""

    model_config = ConfigDict(use_attribute_docstrings=True)


class SpeechSessionUpdate(Wire):
    """What ``session.update`` may set (only the keys sent change)."""

    model_config = ConfigDict(extra="forbid")

    voice: str | None = None
    """A preset, hosted or saved voice id."""
    ref_audio: str | None = None
    """A voice sample to clone (base64), instead of ``voice``."""
    response_format: ResponseFormat | None = None
    """``pcm`` is float32 little-endian at 24 kHz; the others at the engine's rate."""
    streaming_mode: StreamingMode | None = None
    """``responsive``: speak each clause as it completes; ``long_form``: whole sentences."""
    expressiveness: float | None = Field(None, ge=1.0)
    """Accepted for compatibility; local engines speak at their own expressiveness."""


class SpeechSession(Wire):
    request_id: str
    model: str
    voice: str | None
    is_ref_audio: bool
    streaming_mode: StreamingMode
    response_format: ResponseFormat
    expressiveness: float = 1.0


class SpeechSessionEvent(Wire):
    type: Literal["session.created", "session.updated"]
    session: SpeechSession
