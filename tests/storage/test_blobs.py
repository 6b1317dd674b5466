"""The BlobStore contract, on the local store and the in-memory one: round trips, key
validation, listing, and readers that never see a partial blob."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.blobs_memory import MemoryBlobStore
from voxserve.storage.protocol import BlobStore


@pytest.fixture(params=["local", "memory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return MemoryBlobStore()


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
