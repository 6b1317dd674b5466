"""Blobs in an S3 bucket (AWS or an S3-compatible store), through aiobotocore.

Keys follow the rules of the local store (``blobs_local.check_key``) and live under the URL's
prefix (``s3://bucket/prefix`` -> ``prefix/<key>``). Readers never see a half-written object:
a PUT is atomic in S3, and a large streamed write is a multipart upload, which S3 shows only once
it is completed (and which is aborted when the write fails). A process killed during a multipart
upload leaves its parts behind: ``remove_stale_temporaries`` aborts such uploads once they are
older than the grace period. Credentials come from the client's own chain (the standard AWS
variables and files, instance roles).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from voxserve.storage.blobs_local import check_key
from voxserve.storage.protocol import CHUNK_SIZE, BlobInfo, BlobStoreUnavailable

PART_SIZE = 8 * 1024 * 1024
"""Streamed writes up to this size are one PUT; larger ones go up in parts of this size (S3
wants at least 5 MiB per part but the last)."""
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    """Key prefix without a trailing slash; empty for the bucket's root."""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/some/prefix`` -> bucket and prefix.

        Raises:
            ValueError: not an ``s3://`` URL with a bucket.
        """
        if not url.startswith("s3://"):
            raise ValueError(f"{url!r} is not an s3:// URL")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"{url!r} names no bucket")
        return cls(bucket, prefix.strip("/"))


@asynccontextmanager
async def open_s3_blobs(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    path_style: bool | None = None,
    session: AioSession | None = None,
) -> AsyncIterator[S3BlobStore]:
    """An ``S3BlobStore`` for ``url``, its bucket checked first; the client closes on exit.

    ``session`` shares one aiobotocore session (its loaded service models) between stores.

    Raises:
        BlobStoreUnavailable: the bucket is missing, denied or its endpoint unreachable.
    """
    location = S3Location.parse(url)
    use_path_style = endpoint_url is not None if path_style is None else path_style
    config = AioConfig(
        s3={"addressing_style": "path" if use_path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        max_pool_connections=64,  # a replica serves many requests at once; botocore's 10 queue
    )
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            (session or get_session()).create_client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        )
        store = S3BlobStore(client, location)
        await store.check_reachable(endpoint_url)
        yield store


class S3BlobStore:
    """A ``BlobStore`` on one S3 bucket and key prefix."""

    def __init__(self, client: Any, location: S3Location) -> None:
        self._client = client
        self._bucket = location.bucket
        self._root = f"{location.prefix}/" if location.prefix else ""

    async def check_reachable(self, endpoint_url: str | None) -> None:
        """Raises BlobStoreUnavailable unless the bucket answers."""
        where = f"s3://{self._bucket} at {endpoint_url or 'AWS'}"
        try:
            await self._client.head_bucket(Bucket=self._bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            raise BlobStoreUnavailable(
                f"blob store {where} answered {code}: check that the bucket exists and that "
                "the AWS credentials may use it (VOXSERVE_BLOBS__URL, AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            ) from None
        except BotoCoreError as exc:
            raise BlobStoreUnavailable(
                f"blob store {where} cannot be reached: {exc} (VOXSERVE_BLOBS__ENDPOINT_URL, "
                "VOXSERVE_BLOBS__REGION)"
            ) from None

    def _key(self, key: str) -> str:
        return self._root + check_key(key)

    async def put(self, key: str, data: bytes) -> None:
        await self._client.put_object(Bucket=self._bucket, Key=self._key(key), Body=data)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """One PUT when it all fits in a part, else a multipart upload (aborted on failure)."""
        full_key = self._key(key)
        iterator = aiter(_parts(chunks))
        first = await anext(iterator, b"")
        second = await anext(iterator, None)
        if second is None:
            await self._client.put_object(Bucket=self._bucket, Key=full_key, Body=first)
            return
        await self._multipart(full_key, _chain(first, second, iterator))

    async def _multipart(self, full_key: str, parts: AsyncIterator[bytes]) -> None:
        started = await self._client.create_multipart_upload(Bucket=self._bucket, Key=full_key)
        upload = {"Bucket": self._bucket, "Key": full_key, "UploadId": started["UploadId"]}
        try:
            done = []
            number = 0
            async for part in parts:
                number += 1
                sent = await self._client.upload_part(**upload, PartNumber=number, Body=part)
                done.append({"ETag": sent["ETag"], "PartNumber": number})
            await self._client.complete_multipart_upload(**upload, MultipartUpload={"Parts": done})
        except BaseException:
            # Never hide the first error; a second cancel must not leave the upload open.
            with suppress(Exception):
                await asyncio.shield(self._client.abort_multipart_upload(**upload))
            raise

    async def get(self, key: str) -> bytes:
        response = await self._get_object(key)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """One GET read in chunks: the object version it started with, to the end."""
        response = await self._get_object(key)
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    async def _get_object(self, key: str) -> Any:
        try:
            return await self._client.get_object(Bucket=self._bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise KeyError(key) from None
            raise

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self._bucket, Key=self._key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self._bucket, Key=self._key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    async def list(self, prefix: str = "") -> AsyncIterator[BlobInfo]:
        """Every blob whose key starts with ``prefix``, sorted by key (S3 lists in UTF-8 byte
        order, which is code point order, as ``sorted`` on ``str``). Uploads in progress are
        not objects yet, so they are never listed."""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if folder:
            check_key(folder)  # the same refusals as the local store ("../" and the like)
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=self._root + prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(self._root) :]
                yield BlobInfo(key=key, size=int(item["Size"]), modified=_utc(item["LastModified"]))

    async def remove_stale_temporaries(self, older_than: datetime) -> int:
        """Abort multipart uploads under the prefix that were started before ``older_than``.

        Returns:
            How many were aborted.
        """
        stale = [upload async for upload in self._uploads() if upload["Initiated"] < older_than]
        for upload in stale:
            await self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        return len(stale)

    async def _uploads(self) -> AsyncIterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=self._root):
            for upload in page.get("Uploads", []):
                yield {**upload, "Initiated": _utc(upload["Initiated"])}


async def _parts(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Regroup chunks of any size into parts of ``PART_SIZE`` (the last one smaller)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= PART_SIZE:
            yield bytes(buffer[:PART_SIZE])
            del buffer[:PART_SIZE]
    if buffer:
        yield bytes(buffer)


async def _chain(first: bytes, second: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    yield second
    async for part in rest:
        yield part


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
