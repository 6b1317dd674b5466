"""Mistral voice library wire models (spec: ../shared/spec/mistral-audio-api.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GenderLiteral = Literal["female", "male", "neutral"]

MAX_RETENTION_DAYS = 36500
"""``retention_notice`` is days (a 32-bit column): a century is plenty."""


class VoiceResponse(BaseModel):
    """A voice; ``user_id`` is null for presets. SDK 3.7.0 requires id, name, created_at,
    user_id and type."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "piper:en_US-joe-medium",
                    "name": "Joe",
                    "created_at": "2026-01-01T00:00:00Z",
                    "user_id": None,
                    "type": "preset",
                    "languages": ["en-US"],
                    "gender": "male",
                    "retention_notice": 30,
                    "emotions": [],
                    "maps_to": "piper:en_US-joe-medium",
                }
            ]
        },
    )

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
    color: str | None = Field(None, max_length=32)
    description: str | None = None
    retention_notice: int = 30
    trimmed_seconds: float | None = None
    kind: str | None = None
    """``ivc`` for custom (instant clone) voices."""
    emotions: list[str] = Field(default_factory=list)
    """voxserve extension: emotions with their own sample (used by ``[emotion=...]`` tags)."""
    maps_to: str | None = None
    """voxserve extension: the local voice speech uses for this id (the voice's own id, or for
    a hosted name such as ``en_paul_neutral``/``alloy`` or a configured alias, the preset it
    resolves to)."""


class VoiceListResponse(BaseModel):
    """``GET /v1/audio/voices``: all five keys are required by the SDK."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [{"items": [], "total": 0, "page": 1, "page_size": 10, "total_pages": 0}]
        },
    )

    items: list[VoiceResponse]
    total: int
    page: int
    page_size: int
    total_pages: int


class VoiceListPage(BaseModel):
    """``GET /v2/audio/voices``: cursor page."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"data": [], "next_page_token": None}]},
    )

    data: list[VoiceResponse]
    next_page_token: str | None = None


class VoiceCreateRequest(BaseModel):
    """``POST /v1/audio/voices`` (JSON)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "name": "My voice",
                    "sample_audio": "UklGRiQAAABXQVZFZm10IBAAAAABAAEA...",
                    "sample_filename": "me.wav",
                    "languages": ["en"],
                    "gender": "female",
                }
            ]
        },
    )

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
    retention_notice: int = Field(30, ge=0, le=MAX_RETENTION_DAYS)
    emotion_samples: dict[str, str] | None = None
    """voxserve extension: extra base64 samples keyed by emotion (``{"happy": "UklGR..."}``)."""


class VoiceUpdateRequest(BaseModel):
    """``PATCH /v1/audio/voices/{id}``: only the keys sent are changed."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        extra="ignore",
        json_schema_extra={"examples": [{"name": "Renamed voice", "tags": ["narration"]}]},
    )

    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = Field(None, max_length=200)
    languages: list[str] | None = None
    gender: GenderLiteral | None = None
    age: int | None = Field(None, ge=0, le=150)
    tags: list[str] | None = None
    color: str | None = Field(None, max_length=32)
    description: str | None = Field(None, max_length=500)
    retention_notice: int | None = Field(None, ge=0, le=MAX_RETENTION_DAYS)
    emotion_samples: dict[str, str] | None = None
    """voxserve extension: add or replace emotion samples (base64)."""
