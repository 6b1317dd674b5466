"""``voxserve worker``: run batch jobs (Mistral's ``/v1/batch/jobs``) from the PostgreSQL job
queue, beside or instead of the worker that ``serve`` runs."""

from __future__ import annotations

import asyncio

import typer

from voxserve.bootstrap import background_jobs, cancel_and_wait, open_services
from voxserve.cli.common import load_settings
from voxserve.core.batch import NEEDS_POSTGRES
from voxserve.core.batch_types import QueueNotReady


def worker() -> None:
    """Run batch jobs until SIGTERM or Ctrl-C (the running request finishes or goes back to the
    queue). Needs PostgreSQL (VOXSERVE_DATABASE_URL)."""
    from voxserve.api.app import BATCH_ENDPOINTS  # the server's own: a worker runs its jobs
    from voxserve.logs import configure_logging

    settings = load_settings()
    if not settings.uses_postgres:
        typer.echo(f"error: {NEEDS_POSTGRES}", err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, json_lines=settings.log_json)

    async def main() -> None:
        async with open_services(settings, batch_endpoints=BATCH_ENDPOINTS) as services:
            assert services.batch is not None  # PostgreSQL storage always has batch jobs
            jobs = [asyncio.create_task(job) for job in background_jobs(services)]
            try:
                await services.batch.run_worker(handle_signals=True)
            finally:
                for job in jobs:
                    await cancel_and_wait(job)

    try:
        asyncio.run(main())
    except QueueNotReady as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
