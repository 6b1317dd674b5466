"""OpenAI audio API wire models (speech; transcription and chat live beside them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OpenAIFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class VoiceRef(BaseModel):
    id: str


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech`` (OpenAI shape: a body with ``voice``; raw audio or SSE)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    input: str
    voice: str | VoiceRef
    """An OpenAI voice name (``alloy``...), a local preset id or a custom voice id."""
    instructions: str | None = None
    """Accepted for compatibility; the local engines have no style control and ignore it."""
    response_format: OpenAIFormat = "mp3"
    """``pcm`` is raw 16-bit little-endian at 24 kHz."""
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"
