"""Uploaded files (``/v1/files``) and their signed URLs.

A signed URL carries the file id, an expiry time and an HMAC of both: it works without an API key
until it expires, and transcription and chat accept it in place of an upload (resolved locally,
never fetched over the network).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import PurePosixPath
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

from voxserve.core.fetching import Fetched, file_chunks, new_spool, spool_chunks
from voxserve.core.ids import prefixed_id, utcnow
from voxserve.errors import NotFound, ValidationFailed
from voxserve.offload import run_in_thread
from voxserve.storage.protocol import BlobStore, FileRecord, FileRepository

SIGNED_PATH = "/v1/files/{file_id}/signed"
MAX_EXPIRY_HOURS = 168
MAX_FILENAME = 512
"""Longest file name kept (the ``files.filename`` column), after its path parts are stripped."""
MAX_PURPOSE = 64
MAX_CONTENT_TYPE = 200


def safe_filename(name: str | None) -> str:
    """The uploaded name kept as data: its last path part (``/`` or ``\\`` separated), without
    control characters; ``upload`` when nothing is left."""
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base if base not in ("", ".", "..") else "upload"


def check_lengths(filename: str, purpose: str, content_type: str | None) -> None:
    """Raises ValidationFailed for a field longer than its column."""
    for field, value, limit in (
        ("file", filename, MAX_FILENAME),
        ("purpose", purpose, MAX_PURPOSE),
        ("content_type", content_type or "", MAX_CONTENT_TYPE),
    ):
        if len(value) > limit:
            raise ValidationFailed(
                f"{field}: at most {limit} characters (got {len(value)}).", field=field
            )


class FileService:
    def __init__(self, repo: FileRepository, blobs: BlobStore, secret: bytes) -> None:
        self._repo = repo
        self._blobs = blobs
        self._secret = secret

    async def upload(
        self,
        owner_id: str,
        *,
        filename: str,
        data: bytes | BinaryIO,
        content_type: str | None,
        purpose: str,
        expires_at: datetime | None = None,
    ) -> FileRecord:
        """Store the bytes, then the row (a crash in between leaves an orphan blob that the
        cleanup removes). ``data`` may be an open file (an upload as the web framework spooled
        it): it is streamed to the blob store, never read into memory whole (#14 item 8).

        The file name is kept as data: path parts are stripped (``safe_filename``).

        Raises:
            ValidationFailed: an empty file, or a name, purpose or content type too long.
        """
        if isinstance(data, bytes):
            _check_not_empty(len(data))
        filename = safe_filename(filename)
        check_lengths(filename, purpose, content_type)
        file_id = prefixed_id("file")
        key = f"files/{owner_id}/{file_id}"
        size = await self._store(key, data)
        record = FileRecord(
            id=file_id,
            owner_id=owner_id,
            filename=filename,
            bytes=size,
            purpose=purpose,
            blob_key=key,
            content_type=content_type,
            created_at=utcnow(),
            expires_at=expires_at,
        )
        try:
            return await self._repo.create(record)
        except BaseException:
            await asyncio.shield(self._blobs.delete(key))
            raise

    async def _store(self, key: str, data: bytes | BinaryIO) -> int:
        """Put ``data`` under ``key``; returns its size. An open file is streamed from where
        it is (the web framework's spool) to the blob store in pieces read off the loop: the
        only other copy is the blob itself (``BlobStore.put_stream`` is atomic)."""
        if isinstance(data, bytes):
            await self._blobs.put(key, data)
            return len(data)
        size = await run_in_thread(data.seek, 0, os.SEEK_END)
        _check_not_empty(size)
        await self._blobs.put_stream(key, file_chunks(data))
        return size

    async def list(
        self, owner_id: str, *, offset: int, limit: int, purpose: str | None = None
    ) -> tuple[list[FileRecord], int]:
        return await self._repo.list(owner_id, offset=offset, limit=limit, purpose=purpose)

    async def get(self, owner_id: str, file_id: str) -> FileRecord:
        """Raises NotFound (also for another owner's file or an expired one)."""
        record = await self._repo.get(owner_id, file_id)
        if record is None or _expired(record):
            raise NotFound(f"File '{file_id}' not found.", field="file_id")
        return record

    async def content(self, owner_id: str, file_id: str) -> tuple[FileRecord, bytes]:
        record = await self.get(owner_id, file_id)
        return record, await self._read(record)

    async def open(self, owner_id: str, file_id: str) -> Fetched:
        """The file's bytes spooled to a temporary file (never whole in memory), for audio that
        is decoded from a file; the caller closes it.

        Raises:
            NotFound: as ``get``.
        """
        return await self._spooled(await self.get(owner_id, file_id))

    async def delete(self, owner_id: str, file_id: str) -> FileRecord:
        """Hide the file now and remove its bytes; the cleanup finishes the job after a crash."""
        record = await self._repo.mark_deleted(owner_id, file_id, at=utcnow())
        if record is None:
            raise NotFound(f"File '{file_id}' not found.", field="file_id")
        await asyncio.shield(self._purge(record))
        return record

    def signed_url(self, record: FileRecord, *, base_url: str, expiry_hours: int) -> str:
        """A URL that serves the file without a key for ``expiry_hours`` (1 to 168)."""
        if not 1 <= expiry_hours <= MAX_EXPIRY_HOURS:
            raise ValidationFailed(
                f"expiry: must be between 1 and {MAX_EXPIRY_HOURS} hours.", field="expiry"
            )
        return self.signed_url_until(
            record, base_url=base_url, expires=int(time.time()) + expiry_hours * 3600
        )

    def signed_url_until(self, record: FileRecord, *, base_url: str, expires: int) -> str:
        """A URL that serves the file without a key until ``expires`` (Unix time), with no
        upper bound: for links the server makes itself, such as stored generations."""
        path = SIGNED_PATH.format(file_id=record.id)
        signature = self._sign(record.id, expires)
        return f"{base_url.rstrip('/')}{path}?expires={expires}&signature={signature}"

    async def download(
        self, owner_id: str, file_id: str
    ) -> tuple[FileRecord, AsyncIterator[bytes]]:
        """The file's bytes as a stream of chunks (never whole in memory).

        Raises:
            NotFound: as ``get``, or its bytes are gone.
        """
        record = await self.get(owner_id, file_id)
        return record, await self._chunks(record)

    async def download_signed(
        self, file_id: str, expires: str, signature: str
    ) -> tuple[FileRecord, AsyncIterator[bytes]]:
        """The file behind a signed URL, as ``download``.

        Raises:
            NotFound: a wrong or expired signature, or a deleted file (all look alike).
        """
        record = await self._signed_record(file_id, expires, signature)
        return record, await self._chunks(record)

    async def resolve_signed_url(self, url: str) -> Fetched | None:
        """The file spooled to a temporary file (the caller closes it) when ``url`` is one of
        this server's signed URLs (any host), else None.

        Raises:
            NotFound: as ``open_signed``.
        """
        parts = urlsplit(url)
        segments = parts.path.rstrip("/").split("/")
        if len(segments) < 4 or segments[-3] != "files" or segments[-1] != "signed":
            return None
        query = parse_qs(parts.query)
        expires = query.get("expires", [""])[0]
        signature = query.get("signature", [""])[0]
        return await self._spooled(await self._signed_record(segments[-2], expires, signature))

    async def _signed_record(self, file_id: str, expires: str, signature: str) -> FileRecord:
        gone = NotFound("This link is invalid or has expired.")
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            raise gone
        if int(expires) < time.time():
            raise gone
        if not hmac.compare_digest(self._sign(file_id, int(expires)), signature):
            raise gone
        record = await self._repo.get_by_id(file_id)
        if record is None or _expired(record):
            raise gone
        return record

    def _sign(self, file_id: str, expires: int) -> str:
        message = f"{file_id}.{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    async def _read(self, record: FileRecord) -> bytes:
        try:
            return await self._blobs.get(record.blob_key)
        except KeyError:
            raise NotFound(f"File '{record.id}' not found.", field="file_id") from None

    async def _chunks(self, record: FileRecord) -> AsyncIterator[bytes]:
        """The blob's chunks, its first one read already: a missing blob is NotFound here,
        before a response starts."""
        chunks = self._blobs.stream(record.blob_key)
        try:
            first = await anext(chunks, b"")
        except KeyError:
            raise NotFound(f"File '{record.id}' not found.", field="file_id") from None
        return _after(first, chunks)

    async def _spooled(self, record: FileRecord) -> Fetched:
        body = new_spool()
        try:
            size = await spool_chunks(self._blobs.stream(record.blob_key), body, sys.maxsize)
        except KeyError:
            body.close()
            raise NotFound(f"File '{record.id}' not found.", field="file_id") from None
        except BaseException:
            body.close()
            raise
        url = SIGNED_PATH.format(file_id=record.id)
        return Fetched(body, size, record.content_type, url, record.filename)

    async def _purge(self, record: FileRecord) -> None:
        await self._blobs.delete(record.blob_key)
        await self._repo.purge(record.id)


def _check_not_empty(size: int) -> None:
    if not size:
        raise ValidationFailed("file: the file is empty.", field="file")


def _expired(record: FileRecord) -> bool:
    return record.expires_at is not None and record.expires_at <= utcnow()


async def _after(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first``, then ``rest`` (closed however the reader stops)."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]
