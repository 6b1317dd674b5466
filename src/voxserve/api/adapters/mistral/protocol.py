"""Mistral audio API wire models (spec: ../shared/spec/mistral-audio-api.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GenderLiteral = Literal["female", "male", "neutral"]


class VoiceResponse(BaseModel):
    """A voice; ``user_id`` is null for presets. SDK 3.7.0 requires id, name, created_at,
    user_id and type."""

    id: str
    name: str
    created_at: str
    """ISO-8601 UTC, e.g. ``2026-03-20T18:34:32.118943Z``."""
    user_id: str | None
    type: Literal["preset", "custom"]
    slug: str | None = None
    languages: list[str] = Field(default_factory=list)
    gender: str | None = None
    age: int | None = None
    tags: list[str] | None = None
    color: str | None = None
    description: str | None = None
    retention_notice: int = 30
    trimmed_seconds: float | None = None
    kind: str | None = None
    """``ivc`` for custom (instant clone) voices."""
    emotions: list[str] = Field(default_factory=list)
    """voxserve extension: emotions with their own sample (used by ``[emotion=...]`` tags)."""


class VoiceListResponse(BaseModel):
    """``GET /v1/audio/voices``: all five keys are required by the SDK."""

    items: list[VoiceResponse]
    total: int
    page: int
    page_size: int
    total_pages: int


class VoiceListPage(BaseModel):
    """``GET /v2/audio/voices``: cursor page."""

    data: list[VoiceResponse]
    next_page_token: str | None = None


class VoiceCreateRequest(BaseModel):
    """``POST /v1/audio/voices`` (JSON)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    sample_audio: str = Field(min_length=1)
    """The sample file (WAV, MP3, FLAC, OGG, M4A, WebM), base64-encoded."""
    sample_filename: str | None = None
    slug: str | None = Field(None, max_length=200)
    languages: list[str] = Field(default_factory=list)
    gender: GenderLiteral | None = None
    age: int | None = Field(None, ge=0, le=150)
    tags: list[str] | None = None
    color: str | None = Field(None, max_length=32)
    description: str | None = Field(None, max_length=500)
    retention_notice: int = Field(30, ge=0)
    emotion_samples: dict[str, str] | None = None
    """voxserve extension: extra base64 samples keyed by emotion (``{"happy": "UklGR..."}``)."""


class VoiceUpdateRequest(BaseModel):
    """``PATCH /v1/audio/voices/{id}``: only the keys sent are changed."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = None
    languages: list[str] | None = None
    gender: GenderLiteral | None = None
    age: int | None = Field(None, ge=0, le=150)
    tags: list[str] | None = None
    color: str | None = None
    description: str | None = Field(None, max_length=500)
    retention_notice: int | None = Field(None, ge=0)
    emotion_samples: dict[str, str] | None = None
    """voxserve extension: add or replace emotion samples (base64)."""


SpeechFormat = Literal["pcm", "wav", "mp3", "flac", "opus"]


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech`` (Mistral shape: ``voice_id``, ``{"audio_data"}`` or SSE)."""

    model_config = ConfigDict(extra="ignore")

    input: str
    """Text to speak; inline ``[emotion=...]`` and ``[pace=...]`` tags are honoured, not spoken."""
    model: str | None = None
    """``voxtral-mini-tts-latest`` etc. use the default engine; an engine name picks one."""
    voice_id: str | None = None
    """A preset id, a custom voice id, or a Mistral preset id (mapped to a local voice)."""
    ref_audio: str | None = None
    """Base64 reference clip for one-off cloning."""
    response_format: SpeechFormat = "mp3"
    """``pcm`` is raw float32 little-endian; ``wav`` is 16-bit."""
    stream: bool = False
    speed: float = Field(1.0, ge=0.25, le=4.0)
    """voxserve extension: 0.25 to 4.0."""
    language: str | None = None
    """voxserve extension: language hint for multilingual engines."""
    conversation_history: list[dict[str, object]] | None = None


class SpeechResponse(BaseModel):
    audio_data: str
    """The whole file, base64."""


class InputAudioObject(BaseModel):
    """The object form of ``input_audio`` (OpenAI's shape, also in older Mistral docs)."""

    model_config = ConfigDict(extra="ignore")

    data: str
    """Base64 bytes, a ``data:`` URL or an ``http(s)`` URL."""
    format: str | None = None


class ChatContentPart(BaseModel):
    """A content chunk: ``{"type": "text", "text"}`` or ``{"type": "input_audio", ...}``."""

    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None
    input_audio: str | InputAudioObject | None = None
    """Base64 bytes, a ``data:`` URL, an ``http(s)`` URL or a signed file URL of this server."""


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ChatContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (Mistral shape: ``input_audio`` is a plain string)."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    """``voxtral-small-latest`` etc. use the default chat engine; an engine name picks one."""
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int | None = Field(None, ge=1)
    tools: list[dict[str, object]] | None = None
    random_seed: int | None = None
    """Accepted; the engines here take no seed."""
