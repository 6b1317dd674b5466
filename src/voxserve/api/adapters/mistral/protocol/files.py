"""Mistral file wire models (with the keys OpenAI's file object has too)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class FileObject(BaseModel):
    """An uploaded file: ``POST /v1/files`` and the listing."""

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
    object: Literal["list"] = "list"
    data: list[FileObject]
    total: int


class DeletedFile(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: Literal[True] = True


class SignedUrl(BaseModel):
    url: str
    """Serves the file without an API key until it expires."""
