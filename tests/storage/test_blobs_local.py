"""LocalBlobStore: what only files have (folders, temporary files, fsync, worker threads) and
the cleanup of temporaries that interrupted writes leave. The contract is in test_blobs.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voxserve.storage.blobs_local import LocalBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def test_delete_prunes_empty_folders_only(blobs: LocalBlobStore) -> None:
    await blobs.put("voices/o/v1/main.wav", b"1")
    await blobs.put("voices/o/v2/main.wav", b"2")
    await blobs.delete("voices/o/v1/main.wav")
    assert not (blobs.root / "voices" / "o" / "v1").exists()
    assert (blobs.root / "voices" / "o" / "v2" / "main.wav").exists()
    assert blobs.root.exists()


async def test_list_skips_temporary_files(blobs: LocalBlobStore) -> None:
    await blobs.put("a/b", b"x")
    (blobs.root / "a" / ".b.123.tmp").write_bytes(b"partial")
    assert [info.key async for info in blobs.list()] == ["a/b"]


async def test_failed_write_keeps_old_blob_and_leaves_no_temp_file(
    blobs: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await blobs.put("a/b", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await blobs.put("a/b", b"new")
    monkeypatch.undo()

    assert await blobs.get("a/b") == b"old"
    assert sorted(p.name for p in (blobs.root / "a").iterdir()) == ["b"]


async def test_io_runs_off_the_event_loop_thread(
    blobs: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        threads.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    await blobs.put("a/b", b"x")
    assert threads
    assert loop_thread not in threads


KILLED_WRITER = """
import asyncio, os, signal, sys
from pathlib import Path
from voxserve.storage.blobs_local import LocalBlobStore

def die(fd):  # the data is in the temporary file; die before it is renamed into place
    os.kill(os.getpid(), signal.SIGKILL)

os.fsync = die
asyncio.run(LocalBlobStore(Path(sys.argv[1])).put("voices/o/v/main.wav", b"x" * 100_000))
"""


def _age(path: Path, hours: float) -> None:
    old = time.time() - hours * 3600
    os.utime(path, (old, old))


async def test_cleanup_removes_what_a_killed_write_left(blobs: LocalBlobStore) -> None:
    # #14 item 9: a kill -9 during a write leaves a hidden temporary file behind.
    await blobs.put("voices/o/kept.wav", b"kept")
    killed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", KILLED_WRITER, str(blobs.root)], check=False
    )
    assert killed.returncode == -signal.SIGKILL
    left = [p for p in blobs.root.rglob("*") if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].stat().st_size == 100_000
    assert [info.key async for info in blobs.list()] == ["voices/o/kept.wav"]
    _age(left[0], hours=2)

    removed = await blobs.remove_stale_temporaries(datetime.now(UTC) - timedelta(hours=1))

    assert removed == 1
    assert not left[0].exists()
    assert not (blobs.root / "voices" / "o" / "v").exists()  # its empty folder went too
    assert await blobs.get("voices/o/kept.wav") == b"kept"


async def test_cleanup_keeps_temporaries_younger_than_the_grace(blobs: LocalBlobStore) -> None:
    await blobs.put("a/b", b"x")
    fresh = blobs.root / "a" / ".b.0123456789ab.tmp"
    stale = blobs.root / "a" / ".c.0123456789ab.tmp"
    fresh.write_bytes(b"being written")
    stale.write_bytes(b"left by a crash")
    _age(stale, hours=2)
    old_blob = blobs.root / "a" / "b"
    _age(old_blob, hours=2)  # an old blob is not a temporary, whatever its age

    removed = await blobs.remove_stale_temporaries(datetime.now(UTC) - timedelta(hours=1))

    assert removed == 1
    assert sorted(p.name for p in (blobs.root / "a").iterdir()) == [fresh.name, "b"]
    assert await blobs.remove_stale_temporaries(datetime.now(UTC)) == 1  # no grace: fresh too
    assert await blobs.get("a/b") == b"x"


async def test_cleanup_of_a_missing_root_removes_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "never-created")
    assert await store.remove_stale_temporaries(datetime.now(UTC)) == 0
