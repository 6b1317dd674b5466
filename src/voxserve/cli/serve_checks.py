"""Checks ``voxserve serve`` makes before the server starts, so that a setup problem is one
clear line and exit code 2 rather than a traceback from the server's startup."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import typer

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
    if not settings.uses_postgres:
        return
    import psycopg  # PostgreSQL only

    from voxserve.jobs.queue import ensure_schema

    try:
        asyncio.run(ensure_schema(settings.resolved_database_url))
    except QueueNotReady as exc:
        _fail(str(exc))
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        _fail(f"cannot reach the database (VOXSERVE_DATABASE_URL): {reason}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)
