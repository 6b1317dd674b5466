"""A separate process for the cross-process storage tests; run as a script:

    python worker.py URL BLOB_DIR OWNER_ID COUNT LIMIT BARRIER_DIR PARTIES

Every worker waits for all PARTIES at a barrier, opens storage (so the migrations of a fresh
database run at the same moment in every process), makes sure the owner exists, waits at a second
barrier, then tries COUNT voice creates at once and prints one JSON line with the outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from voxserve.errors import LimitExceeded
from voxserve.storage.protocol import VoiceRecord, VoiceSample
from voxserve.storage.sql import open_storage

BARRIER_TIMEOUT_S = 60


async def barrier(folder: Path, name: str, parties: int) -> None:
    """Wait until ``parties`` processes have reached the barrier ``name``."""
    _arrive(folder / f"{name}.{os.getpid()}")
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while _arrived(folder, name) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {_arrived(folder, name)} of {parties} reached {name}")
        await asyncio.sleep(0.002)


# Nothing else runs in this process while it waits: direct file calls block no one.
def _arrive(path: Path) -> None:
    path.touch()


def _arrived(folder: Path, name: str) -> int:
    return sum(1 for entry in folder.iterdir() if entry.name.startswith(f"{name}."))


def _voice(owner_id: str) -> VoiceRecord:
    voice_id = str(uuid.uuid4())
    sample = VoiceSample(f"voices/{owner_id}/{voice_id}/sample-main.wav", 3.0)
    return VoiceRecord(voice_id, owner_id, "v", datetime.now(UTC), (sample,))


async def work(
    url: str, blobs: Path, owner_id: str, count: int, limit: int, folder: Path, parties: int
) -> dict[str, object]:
    await barrier(folder, "open", parties)
    async with open_storage(url, blobs) as storage:
        await storage.keys.get_or_create_owner(owner_id, "shared")
        await barrier(folder, "create", parties)
        results = await asyncio.gather(
            *(storage.voices.create(_voice(owner_id), max_per_owner=limit) for _ in range(count)),
            return_exceptions=True,
        )
    unexpected = [repr(r) for r in results if not isinstance(r, VoiceRecord | LimitExceeded)]
    created = sum(isinstance(r, VoiceRecord) for r in results)
    return {"created": created, "limited": count - created - len(unexpected), "errors": unexpected}


def main(argv: list[str]) -> None:
    url, blobs, owner_id, count, limit, folder, parties = argv
    result = asyncio.run(
        work(url, Path(blobs), owner_id, int(count), int(limit), Path(folder), int(parties))
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
