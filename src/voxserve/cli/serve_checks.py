"""Checks ``voxserve serve`` makes before the server starts, so that a setup problem is one
clear line and exit code 2 rather than a traceback from the server's startup."""

from __future__ import annotations

import asyncio

import typer

from voxserve.bootstrap import prepare_job_queue
from voxserve.core.batch_types import QueueNotReady
from voxserve.settings import Settings


def check_job_queue(settings: Settings) -> None:
    """On PostgreSQL, make sure the batch job queue's tables (procrastinate) are there and are
    the installed procrastinate's: created when missing (as the server's startup would),
    refused when another version made them, with what to run.

    Raises:
        typer.Exit: code 2, after printing why (the tables do not match; the database cannot
            be reached).
    """
    try:
        asyncio.run(prepare_job_queue(settings))
    except QueueNotReady as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
