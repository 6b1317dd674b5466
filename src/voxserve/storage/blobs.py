"""Opens the configured blob store: an S3 bucket when ``blobs.url`` is set, else the local
folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from voxserve.offload import run_in_thread
from voxserve.settings import BlobSettings
from voxserve.storage.blobs_local import LocalBlobStore
from voxserve.storage.protocol import BlobStore


@asynccontextmanager
async def open_blob_store(settings: BlobSettings, local_dir: Path) -> AsyncIterator[BlobStore]:
    """The blob store ``settings`` name, open until the block ends.

    Args:
        settings: the ``blobs`` section; ``url`` unset means the local folder.
        local_dir: the local folder (created when missing) used when no URL is set.

    Raises:
        BlobStoreUnavailable: an S3 bucket that cannot be reached (a clear startup error).
    """
    if settings.url is None:
        await run_in_thread(local_dir.mkdir, parents=True, exist_ok=True)
        yield LocalBlobStore(local_dir)
        return
    from voxserve.storage.blobs_s3 import open_s3_blobs  # aiobotocore only when S3 is used

    async with open_s3_blobs(
        settings.url,
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        path_style=settings.path_style,
    ) as store:
        yield store
