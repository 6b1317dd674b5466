"""Wire models of the ``/voices`` cloning API (seed 003): every reply is
``{"code": 0, "message": "success", "data": ...}``; errors have a non-zero ``code`` (the HTTP
status) and ``data: null``."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")
CloningVoiceType = Literal["custom", "built-in"]


class CloningReply(BaseModel, Generic[T]):
    model_config = ConfigDict(use_attribute_docstrings=True)

    code: int = 0
    """0 on success."""
    message: str = "success"
    data: T


class CloningVoice(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "voice_id": "voice-7d2e",
                    "display_name": "My voice",
                    "voice_type": "custom",
                    "language": "en",
                    "languages": ["en"],
                    "gender": None,
                    "description": None,
                    "labels": [],
                    "duration": 12.4,
                    "create_time": "2026-01-01T00:00:00Z",
                }
            ]
        },
    )

    voice_id: str
    """Usable as ``voice_id`` on ``/v1/audio/speech`` and ``/api/tts/generate``."""
    display_name: str
    voice_type: CloningVoiceType
    language: str | None
    """The primary language."""
    languages: list[str]
    gender: str | None
    description: str | None
    labels: list[str]
    """The voice's tags."""
    duration: float | None
    """Seconds of the stored sample (custom voices)."""
    create_time: str
    """ISO-8601 UTC."""


class CloningVoiceList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"voices": [], "total": 0, "skip": 0, "limit": 10}]},
    )

    voices: list[CloningVoice]
    total: int
    skip: int
    """The page number, from 0."""
    limit: int


class CloningDeletedVoice(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [{"voice_id": "voice-7d2e", "delete_time": "2026-01-02T00:00:00Z"}]
        },
    )

    voice_id: str
    delete_time: str
    """When the voice was deleted; its sample is purged after the retention period."""


class CloningError(BaseModel):
    """Every error of the cloning API, with the HTTP status as ``code``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    code: int
    """The HTTP status (0 is success)."""
    message: str
    data: None = None
