"""Checks ``voxserve serve`` makes before the server starts, so that a setup problem is one
clear line and exit code 2 rather than a traceback from the server's startup."""

from __future__ import annotations

import asyncio

import typer

from voxserve.bootstrap import UnsafeStartup, ensure_safe_to_serve, open_services, prepare_job_queue
from voxserve.core.batch_types import QueueNotReady
from voxserve.errors import VoxError
from voxserve.settings import Settings
from voxserve.storage.blobs import open_blob_store
from voxserve.storage.protocol import BlobStoreUnavailable

SETUP_PROBLEMS = (BlobStoreUnavailable, QueueNotReady, UnsafeStartup)
"""What a setup problem found before serving raises: each says what to change."""


def check_before_serving(settings: Settings) -> None:
    """In one event loop: the S3 bucket answers (when blobs live there); on PostgreSQL, the
    batch job queue's tables (procrastinate) are the installed procrastinate's, created when
    missing as the server's startup would; a server reachable from other machines is safe to
    open (``ensure_safe_to_serve``; loopback binds pass at once, so the services are not opened
    twice for nothing).

    Raises:
        typer.Exit: code 2 after printing a setup problem; 1 after another refusal.
    """
    try:
        asyncio.run(_check(settings))
    except SETUP_PROBLEMS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except VoxError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


async def _check(settings: Settings) -> None:
    if settings.blobs.url is not None:
        async with open_blob_store(settings.blobs, settings.resolved_blob_dir):
            pass
    await prepare_job_queue(settings)
    if not settings.binds_loopback:
        async with open_services(settings) as services:
            await ensure_safe_to_serve(services)
