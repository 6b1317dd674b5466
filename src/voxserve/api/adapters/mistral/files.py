"""Files: ``/v1/files`` (Mistral shape, with the keys OpenAI's file object has too)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from voxserve.api.deps import CurrentOwner, ServicesDep, public_base_url
from voxserve.storage.protocol import FileRecord

router = APIRouter(tags=["files"])


def file_body(record: FileRecord, **extra: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": int(record.created_at.timestamp()),
        "filename": record.filename,
        "purpose": record.purpose,
        "sample_type": record.purpose,
        "source": "upload",
        "mimetype": record.content_type,
        "expires_at": int(record.expires_at.timestamp()) if record.expires_at else None,
        "visibility": "user",
        "status": "processed",
        **extra,
    }


@router.post("/v1/files")
async def upload_file(
    owner: CurrentOwner,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="The file (audio for transcription and chat).")],
    purpose: Annotated[str, Form()] = "audio",
    visibility: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Upload a file; use its id as ``file_id`` in transcriptions, or get a signed URL."""
    record = await services.files.upload(
        owner.id,
        filename=file.filename or "upload",
        data=await file.read(),
        content_type=file.content_type,
        purpose=purpose,
    )
    return file_body(record)


@router.get("/v1/files")
async def list_files(
    owner: CurrentOwner,
    services: ServicesDep,
    page: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    purpose: str | None = None,
) -> dict[str, Any]:
    records, total = await services.files.list(
        owner.id, offset=page * page_size, limit=page_size, purpose=purpose
    )
    return {"object": "list", "data": [file_body(r) for r in records], "total": total}


@router.get("/v1/files/{file_id}")
async def retrieve_file(file_id: str, owner: CurrentOwner, services: ServicesDep) -> dict[str, Any]:
    return file_body(await services.files.get(owner.id, file_id), deleted=False)


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, owner: CurrentOwner, services: ServicesDep) -> dict[str, Any]:
    record = await services.files.delete(owner.id, file_id)
    return {"id": record.id, "object": "file", "deleted": True}


@router.get("/v1/files/{file_id}/content", response_class=Response)
async def download_file(file_id: str, owner: CurrentOwner, services: ServicesDep) -> Response:
    record, data = await services.files.content(owner.id, file_id)
    return file_response(record, data, media_type="application/octet-stream")  # the SDK wants it


@router.get("/v1/files/{file_id}/url")
async def get_signed_url(
    file_id: str,
    request: Request,
    owner: CurrentOwner,
    services: ServicesDep,
    expiry: Annotated[int, Query(description="Hours the URL stays valid (1 to 168).")] = 24,
) -> dict[str, str]:
    """A URL that serves the file without an API key until it expires."""
    record = await services.files.get(owner.id, file_id)
    base = public_base_url(request, services)
    return {"url": services.files.signed_url(record, base_url=base, expiry_hours=expiry)}


@router.get("/v1/files/{file_id}/signed", response_class=Response, include_in_schema=False)
async def open_signed_url(
    file_id: str, services: ServicesDep, expires: str = "", signature: str = ""
) -> Response:
    record, data = await services.files.open_signed(file_id, expires, signature)
    return file_response(record, data)


def file_response(record: FileRecord, data: bytes, media_type: str | None = None) -> Response:
    safe = record.filename.replace('"', "").replace("\r", "").replace("\n", "")
    return Response(
        data,
        media_type=media_type or record.content_type or "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )
