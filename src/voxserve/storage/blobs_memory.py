"""Blobs in a dict: the in-memory ``BlobStore`` of ``storage.memory`` (tests, no disk).

Keys follow the rules of the local store (``blobs_local.check_key``), so a key this store accepts
is one every store accepts. A put replaces the whole value at once, so readers see the old blob,
the new one, or none, as the protocol asks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime

from voxserve.storage.blobs_local import check_key
from voxserve.storage.protocol import CHUNK_SIZE, BlobInfo


class MemoryBlobStore:
    """A ``BlobStore`` in memory; safe to share between threads (one lock guards the dict)."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, datetime]] = {}
        self._lock = threading.Lock()

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        await asyncio.sleep(0)  # a real store yields here: let concurrent callers interleave
        with self._lock:
            self._blobs[key] = (bytes(data), datetime.now(UTC))

    async def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            found = self._blobs.get(key)
        if found is None:
            raise KeyError(key)
        return found[0]

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        check_key(key)
        data = bytearray()
        async for chunk in chunks:
            data += chunk
        await self.put(key, bytes(data))

    async def stream(self, key: str, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        data = await self.get(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    async def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    async def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._blobs

    async def list(self, prefix: str = "") -> AsyncIterator[BlobInfo]:
        """Every blob whose key starts with ``prefix`` (a plain string prefix), sorted by key."""
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if folder:
            check_key(folder)  # the same refusals as the local store ("../" and the like)
        with self._lock:
            found = [
                BlobInfo(key=key, size=len(data), modified=modified)
                for key, (data, modified) in sorted(self._blobs.items())
                if key.startswith(prefix)
            ]
        for info in found:
            yield info

    async def remove_stale_temporaries(self, older_than: datetime) -> int:
        """Nothing to remove: writes here never leave temporaries."""
        return 0
