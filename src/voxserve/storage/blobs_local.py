"""Blobs as files under one folder.

Keys are relative paths with ``/``; every segment must be a plain name (no ``..``, no leading dot,
no backslash), so a key can never reach outside the root nor collide with a temporary file.
Writes go to a temporary file in the target folder, are fsynced, then renamed over the target:
a reader sees the old blob, the new one, or none. A process killed during a write (kill -9) leaves
its temporary file behind: ``remove_stale_temporaries`` (run by the periodic cleanup) removes those
older than a grace period. All file IO runs in worker threads so the event loop never waits on the
disk.
"""

from __future__ import annotations

import builtins
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from voxserve.offload import run_in_thread
from voxserve.storage.protocol import CHUNK_SIZE, BlobInfo

_TEMP_SUFFIX = ".tmp"


def check_key(key: str) -> str:
    """Return ``key`` when it is a safe relative blob key.

    Raises:
        ValueError: empty, absolute, with a backslash, NUL, empty or ``.``/``..`` segments, or a
            segment that starts with a dot.
    """
    if not key or key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"invalid blob key {key!r}: must be a relative path with '/'")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise ValueError(f"invalid blob key {key!r}: empty, '.', '..' or hidden segment")
    return key


class LocalBlobStore:
    """A ``BlobStore`` on the local file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        await run_in_thread(self._put_sync, path, data)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await run_in_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        """Write the chunks to a temporary file, one worker-thread call each, then rename it."""
        path = self._path(key)
        temp, handle = await run_in_thread(_open_temporary, path)
        try:
            async for chunk in chunks:
                await run_in_thread(handle.write, chunk)
            await run_in_thread(_commit, handle, temp, path)
        except BaseException:
            # Also on cancellation, where no further await may run: two quick calls on the loop.
            handle.close()
            temp.unlink(missing_ok=True)
            raise

    async def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Chunks of the file as it was opened (a concurrent replace does not mix versions)."""
        path = self._path(key)
        try:
            handle = await run_in_thread(_open_for_reading, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise KeyError(key) from None
        try:
            while chunk := await run_in_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await run_in_thread(self._delete_sync, path)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await run_in_thread(path.is_file)

    async def list(self, prefix: str = "") -> AsyncIterator[BlobInfo]:
        """Every blob whose key starts with ``prefix`` (a plain string prefix), sorted by key."""
        for info in await run_in_thread(self._list_sync, prefix):
            yield info

    async def remove_stale_temporaries(self, older_than: datetime) -> int:
        """Remove temporary files of interrupted writes last modified before ``older_than``.

        Returns:
            How many were removed.
        """
        return await run_in_thread(self._remove_temporaries_sync, older_than.timestamp())

    # ------------------------------------------------------------------ worker-thread parts

    def _put_sync(self, path: Path, data: bytes) -> None:
        # A concurrent delete may remove the (then empty) folder between mkdir and open: retry.
        for attempt in range(3):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                _write_atomically(path, data)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise

    def _delete_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        self._prune_empty_parents(path.parent)

    def _prune_empty_parents(self, folder: Path) -> None:
        # Per-voice folders would pile up otherwise; rmdir refuses a folder that is not empty.
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _remove_temporaries_sync(self, cutoff: float) -> int:
        removed = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                path = Path(dirpath, name)
                if _is_temporary(name) and _modified_before(path, cutoff):
                    path.unlink(missing_ok=True)
                    removed += 1
                    self._prune_empty_parents(path.parent)
        return removed

    def _list_sync(self, prefix: str) -> builtins.list[BlobInfo]:
        # Walk only below the deepest folder the prefix names ("voices/a/b" -> voices/a).
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self._path(folder) if folder else self.root
        found: builtins.list[BlobInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue  # temporary files of writes in progress
                full = Path(dirpath, name)
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    info = _info(key, full)
                    if info is not None:
                        found.append(info)
        found.sort(key=lambda i: i.key)
        return found


def _is_temporary(name: str) -> bool:
    """Names ``_write_atomically`` gives its temporaries (no key segment starts with a dot)."""
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX)


def _modified_before(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False  # renamed into place or removed meanwhile


def _temporary_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")


def _open_temporary(path: Path) -> tuple[Path, BinaryIO]:
    for attempt in range(3):  # a concurrent delete may prune the folder between mkdir and open
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = _temporary_for(path)
        try:
            return temp, open(temp, "xb")
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _open_for_reading(path: Path) -> BinaryIO:
    return open(path, "rb")


def _commit(handle: BinaryIO, temp: Path, path: Path) -> None:
    with handle:
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_folder(path.parent)


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` to ``path`` via a temporary file."""
    temp = _temporary_for(path)
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _info(key: str, path: Path) -> BlobInfo | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None  # deleted while we walked
    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
    return BlobInfo(key=key, size=stat.st_size, modified=modified)
