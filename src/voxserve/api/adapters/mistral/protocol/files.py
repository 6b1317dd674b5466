"""Mistral file wire models (with the keys OpenAI's file object has too)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class FileObject(BaseModel):
    """An uploaded file: ``POST /v1/files`` and the listing."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "file-3f9a1c",
                    "object": "file",
                    "bytes": 96044,
                    "created_at": 1767225600,
                    "filename": "meeting.wav",
                    "purpose": "audio",
                    "sample_type": "audio",
                    "source": "upload",
                    "mimetype": "audio/wav",
                    "expires_at": None,
                    "visibility": "user",
                    "status": "processed",
                }
            ]
        },
    )

    id: str
    """Use as ``file_id`` on ``/v1/audio/transcriptions``."""
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    """Unix seconds."""
    filename: str
    purpose: str
    sample_type: str
    source: Literal["upload"] = "upload"
    mimetype: str | None
    expires_at: int | None
    """Unix seconds; null: kept until deleted."""
    visibility: Literal["user"] = "user"
    status: Literal["processed"] = "processed"


class RetrievedFile(FileObject):
    """``GET /v1/files/{id}``."""

    deleted: bool = False


class FileList(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"object": "list", "data": [], "total": 0}]},
    )

    object: Literal["list"] = "list"
    data: list[FileObject]
    total: int


class DeletedFile(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={"examples": [{"id": "file-3f9a1c", "object": "file", "deleted": True}]},
    )

    id: str
    object: Literal["file"] = "file"
    deleted: Literal[True] = True


class SignedUrl(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "url": "http://127.0.0.1:8000/v1/files/file-3f9a1c/signed?expires=1767312000&signature=..."
                }
            ]
        },
    )

    url: str
    """Serves the file without an API key until it expires."""
