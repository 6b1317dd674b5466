"""BlobStore.put_file: a blob from a file on disk, on every store (#14 item 8)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.s3_emulator import S3Emulator
from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.blobs_memory import MemoryBlobStore
from voxserve.storage.blobs_s3 import open_s3_blobs
from voxserve.storage.protocol import BlobStore


@pytest.fixture(params=["local", "memory", "s3"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    elif request.param == "memory":
        yield MemoryBlobStore()
    else:
        s3: S3Emulator = request.getfixturevalue("s3_server")
        url = f"s3://voxserve/put-file-{uuid.uuid4().hex[:8]}"
        async with open_s3_blobs(url, endpoint_url=s3.endpoint_url, region=s3.region) as store:
            yield store


async def test_put_file_stores_the_content_and_leaves_the_file(
    blobs: BlobStore, tmp_path: Path
) -> None:
    source = tmp_path / "upload.bin"
    content = bytes(range(256)) * 9000  # a couple of copy pieces
    source.write_bytes(content)

    await blobs.put_file("files/o/f1", source)

    assert await blobs.get("files/o/f1") == content
    assert source.read_bytes() == content
    assert [info.size async for info in blobs.list("files/")] == [len(content)]


async def test_put_file_replaces_and_refuses_bad_keys(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"new")
    await blobs.put("files/o/f1", b"old")
    await blobs.put_file("files/o/f1", source)
    assert await blobs.get("files/o/f1") == b"new"
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.put_file("../outside", source)


async def test_a_failed_put_file_leaves_no_temporary(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(FileNotFoundError):
        await blobs.put_file("files/o/f1", tmp_path / "missing.bin")
    assert not await blobs.exists("files/o/f1")
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
