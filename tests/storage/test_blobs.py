"""The BlobStore contract, on the local store, the in-memory one and S3 (an S3 emulator, moto's
server): round trips, streaming, key validation, listing, and readers that never see a partial
blob."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiobotocore.session import get_session

from tests.support.s3_emulator import S3Emulator
from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.blobs_memory import MemoryBlobStore
from voxserve.storage.blobs_s3 import open_s3_blobs
from voxserve.storage.protocol import BlobStore

S3 = get_session()
"""One aiobotocore session for the module: its service models load once."""


@pytest.fixture(params=["local", "memory", "s3"])
async def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "blobs")
    elif request.param == "memory":
        yield MemoryBlobStore()
    else:
        s3: S3Emulator = request.getfixturevalue("s3_server")
        url = f"s3://voxserve/test-{uuid.uuid4().hex[:8]}"  # a prefix of its own per test
        opened = open_s3_blobs(url, endpoint_url=s3.endpoint_url, region=s3.region, session=S3)
        async with opened as store:
            yield store


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


async def test_put_get_exists_delete(blobs: BlobStore) -> None:
    await blobs.put("voices/a/sample.wav", b"RIFF")

    assert await blobs.get("voices/a/sample.wav") == b"RIFF"
    assert await blobs.exists("voices/a/sample.wav")
    await blobs.delete("voices/a/sample.wav")
    assert not await blobs.exists("voices/a/sample.wav")
    with pytest.raises(KeyError):
        await blobs.get("voices/a/sample.wav")


async def test_put_replaces(blobs: BlobStore) -> None:
    await blobs.put("k", b"old")
    await blobs.put("k", b"new")
    assert await blobs.get("k") == b"new"


async def test_get_missing_raises_key_error(blobs: BlobStore) -> None:
    with pytest.raises(KeyError):
        await blobs.get("nothing/here")
    await blobs.put("folder/file", b"x")
    with pytest.raises(KeyError):
        await blobs.get("folder")  # a folder is not a blob
    assert not await blobs.exists("folder")


async def test_delete_is_idempotent(blobs: BlobStore) -> None:
    await blobs.delete("never/there")
    await blobs.put("a/b", b"x")
    await blobs.delete("a/b")
    await blobs.delete("a/b")


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../../x", "a/..", "..", "a\\b", "a//b", "a/", ".hidden",
     "a/.tmp", "./a", "a/./b", "a\0b"],
)  # fmt: skip
async def test_invalid_keys_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.put(key, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.get(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.delete(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await blobs.exists(key)


async def test_list_by_prefix(blobs: BlobStore) -> None:
    for key, data in [("voices/o/v1/a", b"1"), ("voices/o/v1/b", b"22"),
                      ("voices/o/v10/a", b"333"), ("files/f", b"4")]:  # fmt: skip
        await blobs.put(key, data)
    before = datetime.now(UTC) - timedelta(minutes=1)

    everything = [info async for info in blobs.list()]
    folder = [info.key async for info in blobs.list("voices/o/v1/")]
    partial = [info.key async for info in blobs.list("voices/o/v1")]
    missing = [info async for info in blobs.list("nope/")]

    assert [i.key for i in everything] == ["files/f", "voices/o/v1/a", "voices/o/v1/b",
                                           "voices/o/v10/a"]  # fmt: skip
    assert [i.size for i in everything] == [1, 1, 2, 3]
    assert all(i.modified.tzinfo == UTC and i.modified > before for i in everything)
    assert folder == ["voices/o/v1/a", "voices/o/v1/b"]
    assert partial == ["voices/o/v1/a", "voices/o/v1/b", "voices/o/v10/a"]
    assert missing == []


async def test_list_refuses_prefix_outside_root(blobs: BlobStore) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        _ = [info async for info in blobs.list("../")]


async def test_readers_never_see_a_partial_blob(blobs: BlobStore) -> None:
    versions = [bytes([n]) * 2_000_000 for n in range(1, 6)]
    await blobs.put("big", versions[0])
    seen: set[bytes] = set()

    async def read_repeatedly() -> None:
        for _ in range(40):
            data = await blobs.get("big")
            assert data in versions, "a reader saw a partly written blob"
            seen.add(data[:1])

    async def write_all() -> None:
        for version in versions[1:] * 3:
            await blobs.put("big", version)

    await asyncio.gather(read_repeatedly(), read_repeatedly(), write_all())
    assert seen


async def test_put_stream_and_stream_round_trip(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB: a multipart upload on S3
    await blobs.put_stream("files/big", chunks_of(data, 300_000))
    await blobs.put_stream("files/empty", chunks_of(b"", 1))

    received = [chunk async for chunk in blobs.stream("files/big", chunk_size=1 << 20)]

    assert b"".join(received) == data
    assert max(len(chunk) for chunk in received) <= 1 << 20
    assert await blobs.get("files/empty") == b""
    assert [i.size async for i in blobs.list("files/")] == [len(data), 0]


async def test_stream_of_missing_blob_raises_key_error(blobs: BlobStore) -> None:
    with pytest.raises(KeyError):
        _ = [chunk async for chunk in blobs.stream("files/none")]


async def test_failed_put_stream_keeps_the_old_blob(blobs: BlobStore) -> None:
    await blobs.put("files/f", b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 9_000_000  # past one part on S3: the upload has begun
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        await blobs.put_stream("files/f", broken())

    assert await blobs.get("files/f") == b"old"
    assert [i.key async for i in blobs.list()] == ["files/f"]
    assert await blobs.remove_stale_temporaries(datetime.now(UTC) + timedelta(hours=1)) == 0


async def test_a_stream_reads_one_version_to_the_end(blobs: BlobStore) -> None:
    old = b"a" * 3_000_000
    await blobs.put("files/v", old)
    stream = blobs.stream("files/v", chunk_size=1_000_000)
    first = await anext(stream)

    await blobs.put("files/v", b"b" * 3_000_000)  # replaced while the reader is halfway
    rest = [chunk async for chunk in stream]

    assert first + b"".join(rest) == old
    assert await blobs.get("files/v") == b"b" * 3_000_000
