"""``voxserve migrate-storage``: move this install's storage (the configured database and blob
store, by default the SQLite file and blob folder of the data folder) to PostgreSQL and S3."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Annotated

import typer

from voxserve.settings import BlobSettings, Settings
from voxserve.storage.blobs import open_blob_store
from voxserve.storage.protocol import BlobStoreUnavailable
from voxserve.storage.transfer import Endpoint, TargetNotEmpty, TransferReport, transfer

TARGET_DATABASE_VARIABLE = "VOXSERVE_MIGRATE_TO_DATABASE"
"""Where ``--to-database`` may come from instead of the command line (not a server setting)."""


def migrate_storage(
    to_database: Annotated[
        str,
        typer.Option(
            envvar=TARGET_DATABASE_VARIABLE,
            help="The target database, e.g. postgresql+asyncpg://u:p@host/db (or set "
            f"{TARGET_DATABASE_VARIABLE}, which keeps its password out of the process list).",
        ),
    ],
    to_blobs: Annotated[
        str | None,
        typer.Option(help="The target blob store, s3://bucket/prefix (unset: blobs stay)."),
    ] = None,
    to_blobs_endpoint: Annotated[
        str | None, typer.Option(help="S3 API URL of an S3-compatible target (MinIO, R2).")
    ] = None,
    to_blobs_region: Annotated[str | None, typer.Option(help="Region of the bucket.")] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Go on into a target that is not empty (a rerun)."),
    ] = False,
) -> None:
    """Copy the configured storage to a new database (and S3 bucket), then verify the counts.

    Nothing is removed from the source. Point the servers at the target afterwards
    (VOXSERVE_DATABASE_URL, VOXSERVE_BLOBS__URL).
    """
    settings = Settings()
    target_blobs = None
    if to_blobs is not None:
        target_blobs = BlobSettings(
            url=to_blobs, endpoint_url=to_blobs_endpoint, region=to_blobs_region
        )
    try:
        report = asyncio.run(_run(settings, to_database, target_blobs, resume=resume))
    except (TargetNotEmpty, BlobStoreUnavailable) as exc:
        hint = " (rerun with --resume to go on into it)" if isinstance(exc, TargetNotEmpty) else ""
        typer.echo(f"error: {exc}{hint}", err=True)
        raise typer.Exit(2) from None
    _print(report)
    if not report.verified:
        typer.echo("error: the target does not hold everything the source has", err=True)
        raise typer.Exit(1)


async def _run(
    settings: Settings, to_database: str, to_blobs: BlobSettings | None, *, resume: bool
) -> TransferReport:
    async with AsyncExitStack() as stack:
        source_blobs = target_blobs = None
        if to_blobs is not None:
            source_blobs = await stack.enter_async_context(
                open_blob_store(settings.blobs, settings.resolved_blob_dir)
            )
            target_blobs = await stack.enter_async_context(
                open_blob_store(to_blobs, settings.resolved_blob_dir)
            )
        return await transfer(
            Endpoint(settings.resolved_database_url, source_blobs),
            Endpoint(to_database, target_blobs),
            resume=resume,
            legacy_dir=None if settings.secret_key else settings.data_dir,
            progress=typer.echo,
        )


def _print(report: TransferReport) -> None:
    typer.echo(f"{'table':<16} {'source':>8} {'target':>8}")
    for name, (source, target) in report.rows.items():
        typer.echo(f"{name:<16} {source:>8} {target:>8}")
    if report.blobs != (0, 0) or report.blobs_copied:
        source, target = report.blobs
        typer.echo(f"{'blobs':<16} {source:>8} {target:>8}  ({report.blob_bytes} bytes)")
    for name in report.secrets_kept:
        typer.echo(
            f"warning: the target already had its own {name!r} and keeps it; "
            "file URLs and browser tokens the source signed are not accepted there "
            "(set VOXSERVE_SECRET_KEY on every server to choose one key)",
            err=True,
        )
    if report.verified:
        typer.echo("verified: the target holds every row and blob of the source")
