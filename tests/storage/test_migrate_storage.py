"""``voxserve migrate-storage``: a local install (SQLite + blob folder + an older install's
``secret.key``) moved to PostgreSQL + S3 (an S3 emulator, moto's server): nothing lost, counts
verified and printed, a non-empty target refused, a rerun with ``--resume`` a no-op."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.storage import factories
from tests.support.s3_emulator import S3Emulator
from voxserve.cli.main import app as cli
from voxserve.storage.blobs_s3 import open_s3_blobs
from voxserve.storage.protocol import Storage
from voxserve.storage.secrets import signing_key
from voxserve.storage.sql import open_storage

pytestmark = pytest.mark.postgres
SECRET = "ab" * 32
BIG = bytes(range(256)) * 40_000  # ~10 MB: streamed, a multipart upload


async def fill(storage: Storage) -> dict[str, str]:
    """A small install: two owners, a key, a voice, a file, usage; their blobs."""
    alice = await storage.keys.create_owner("alice", credits=50)
    bob = await storage.keys.create_owner("bob")
    await storage.keys.create_key(alice.id, "laptop", "hash-1", "vx-abc")
    voice = await storage.voices.create(factories.voice(alice.id), max_per_owner=5)
    await storage.blobs.put(voice.main_sample.blob_key, b"RIFF-sample")
    file = await storage.files.create(factories.file(bob.id, bytes=len(BIG)))
    await storage.blobs.put(file.blob_key, BIG)
    for minute in range(3):
        await storage.usage.record(factories.usage(alice.id, factories.T0, tokens=minute))
    return {"alice": alice.id, "bob": bob.id, "voice": voice.id, "file": file.id}


async def run(data: Path, *arguments: str) -> tuple[int, str]:
    """The command in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(run_sync, data, *arguments)


def run_sync(data: Path, *arguments: str) -> tuple[int, str]:
    env = {"VOXSERVE_DATA_DIR": str(data)}
    result = CliRunner().invoke(cli, ["migrate-storage", *arguments], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def test_local_install_moves_to_postgres_and_s3(
    tmp_path: Path, postgres_url: str, s3_server: S3Emulator
) -> None:
    data = tmp_path / "data"
    async with open_storage(f"sqlite+aiosqlite:///{data / 'voxserve.db'}", data / "blobs") as old:
        ids = await fill(old)
    (data / "secret.key").write_text(SECRET)
    bucket = f"s3://voxserve/moved-{uuid.uuid4().hex[:8]}"
    target = ["--to-database", postgres_url, "--to-blobs", bucket,
              "--to-blobs-endpoint", s3_server.endpoint_url]  # fmt: skip

    code, output = await run(data, *target)

    assert code == 0, output
    assert "verified" in output
    assert "owners                  2        2" in output
    assert "usage                   3        3" in output
    assert "blobs                   2        2" in output
    endpoint = s3_server.endpoint_url
    async with (
        open_s3_blobs(bucket, endpoint_url=endpoint) as blobs,
        open_storage(postgres_url, tmp_path / "unused", blobs=blobs) as new,
    ):
        voice = await new.voices.get(ids["alice"], ids["voice"])
        assert voice is not None
        assert await new.blobs.get(voice.main_sample.blob_key) == b"RIFF-sample"
        file = await new.files.get(ids["bob"], ids["file"])
        assert file is not None
        assert await new.blobs.get(file.blob_key) == BIG
        assert await factories.balance(new, ids["alice"]) == 50
        assert (await new.keys.find_by_hash("hash-1")) is not None
        # URLs signed before keep working: the key is the one of the old secret.key.
        assert await signing_key(new.secrets, None, tmp_path / "elsewhere") == SECRET.encode()
        await new.usage.record(factories.usage(ids["alice"], factories.T0))  # ids moved on
        assert len(await new.usage.records(ids["alice"])) == 4

    code, output = await run(data, *target)
    assert code == 2
    assert "not empty" in output or "has rows" in output
    code, output = await run(data, *target, "--resume")
    assert code == 1  # the target now has one more usage row than the source
    assert "usage                   3        4" in output
