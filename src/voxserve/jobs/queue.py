"""Batch jobs on procrastinate, a job queue in PostgreSQL: the App, its one task, and the worker.

``open_batch_queue`` applies procrastinate's schema once (under an advisory lock, so replicas
and workers starting together do not race), or checks the one there against the installed
procrastinate (its upgrades come as SQL migrations that an operator applies: a mismatch stops
the start with what to run), and opens the App; ``ProcrastinateBatchQueue`` is
core's ``BatchQueue``.

What procrastinate gives and what is added here:

- A job survives restarts: it is a row in ``procrastinate_jobs`` until a worker ends it.
- Workers send heartbeats. A job whose worker stopped sending them (killed with ``kill -9``,
  its machine lost) is "stalled"; procrastinate finds such jobs (``get_stalled_jobs``) and the
  documented recipe is to retry them, which every worker does here every few seconds: the job
  goes back to the queue and resumes at its first request without an outcome.
- A job is queued with a ``lock`` (one run of a batch job at a time) and a ``queueing_lock``
  (at most one waiting): ``requeue`` queues a job the queue lost (a server died between
  storing and queueing it; core looks for such jobs) without ever queueing it twice.
- Successful runs are deleted as they end; cancelled, aborted and failed ones hourly, once
  older than ``prune_after_hours`` (procrastinate's builtin ``remove_old_jobs`` as a periodic
  task: one worker runs each tick).
- Cancelling a running job asks procrastinate to abort it; the worker cancels the job's task.
- A worker shutting down (SIGTERM, ``serve`` stopping) waits ``shutdown_grace_seconds``, then
  aborts its jobs; such a job raises ``Interrupted`` and the task's retry strategy puts it back
  in the queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import procrastinate
import psycopg
from procrastinate import builtin_tasks
from procrastinate.exceptions import AlreadyEnqueued, ConnectorException
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import JobDeferrer, Status
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from voxserve.core.batch_types import JobRunner, QueueNotReady
from voxserve.settings import BatchSettings

log = logging.getLogger(__name__)
TASK_NAME = "voxserve.batch.run"
QUEUE_NAME = "voxserve-batch"
PRUNE_TASK_NAME = "voxserve.batch.prune_queue"
PRUNE_CRON = "7 * * * *"
"""Hourly (at minute 7): when the queue's ended rows are pruned."""
SCHEMA_LOCK_KEY = 0x766F7873_6A6F6273  # "voxsjobs"
LIVE = frozenset({Status.TODO.value, Status.DOING.value})
"""Statuses of a queue job that will still run (or runs)."""
RUNNER = "batch_runner"
"""The worker's ``additional_context`` key that holds the ``BatchRunner``."""


class Interrupted(Exception):
    """The worker stopped while the job ran: run the job again (it resumes)."""


def libpq_url(database_url: str) -> str:
    """The ``postgresql://`` URL psycopg takes, from voxserve's SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def run_batch_job(context: JobContext, job_id: str) -> None:
    """The queue's task: run one batch job with the worker's runner."""
    runner: JobRunner = context.additional_context[RUNNER]
    try:
        await runner.run(job_id)
    except asyncio.CancelledError:
        if context.abort_reason() == AbortReason.SHUTDOWN:
            raise Interrupted(f"worker stopped while batch job {job_id} ran") from None
        raise


def create_app(database_url: str, settings: BatchSettings) -> procrastinate.App:
    """A procrastinate App on the database, with the batch task and the hourly pruning
    registered."""
    connector = procrastinate.PsycopgConnector(
        conninfo=libpq_url(database_url), min_size=1, max_size=4
    )
    app = procrastinate.App(connector=connector)
    retry = procrastinate.RetryStrategy(retry_exceptions={Interrupted})
    app.task(name=TASK_NAME, queue=QUEUE_NAME, pass_context=True, retry=retry)(run_batch_job)

    async def prune_queue(context: JobContext, timestamp: int) -> None:
        """procrastinate's documented recipe: its builtin ``remove_old_jobs``, periodically."""
        await builtin_tasks.remove_old_jobs(
            context,
            max_hours=settings.prune_after_hours,
            queue=QUEUE_NAME,
            remove_failed=True,
            remove_cancelled=True,
            remove_aborted=True,
        )

    task = app.task(name=PRUNE_TASK_NAME, queue=QUEUE_NAME, pass_context=True)(prune_queue)
    app.periodic(cron=PRUNE_CRON, periodic_id=PRUNE_TASK_NAME)(task)
    return app


async def ensure_schema(database_url: str) -> None:
    """Apply procrastinate's schema unless it is there (one process at a time); check one that
    is there against the installed procrastinate.

    Raises:
        QueueNotReady: the tables are another procrastinate version's (the message says what
            to run).
    """
    connect = psycopg.AsyncConnection.connect(libpq_url(database_url))
    async with await connect as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cursor = await connection.execute("SELECT to_regclass('procrastinate_jobs')")
        row = await cursor.fetchone()
        if row is None or row[0] is None:
            log.info("creating the job queue's tables (procrastinate)")
            await connection.execute(SchemaManager.get_schema())
        else:
            await check_schema(connection)


async def prepare_schema(database_url: str) -> None:
    """``ensure_schema`` for a check before the server starts: an unreachable database is a
    ``QueueNotReady`` too (one line saying so, not the driver's traceback).

    Raises:
        QueueNotReady: the tables do not match, or the database cannot be reached.
    """
    try:
        await ensure_schema(database_url)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise QueueNotReady(
            f"cannot reach the database (VOXSERVE_DATABASE_URL): {reason}"
        ) from None


async def check_schema(connection: psycopg.AsyncConnection[Any]) -> None:
    """Compare the database's procrastinate functions and enum values with those of the
    installed procrastinate's schema: procrastinate keeps no schema version in the database,
    but each of its migrations adds or renames (``_v2``) a function or adds an enum value.

    Raises:
        QueueNotReady: some are missing (the message names them and what to run).
    """
    functions, labels = expected_schema()
    cursor = await connection.execute(
        "SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%%'"
    )
    have = {name for (name,) in await cursor.fetchall()}
    cursor = await connection.execute(
        "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid"
        " WHERE t.typname LIKE 'procrastinate%%'"
    )
    have |= {f"{kind}.{label}" for kind, label in await cursor.fetchall()}
    missing = sorted((functions | labels) - have)
    if missing:
        raise QueueNotReady(schema_mismatch(missing))


def expected_schema() -> tuple[set[str], set[str]]:
    """The functions and ``type.label`` enum values of the installed procrastinate's schema."""
    schema = SchemaManager.get_schema()
    functions = set(re.findall(r"CREATE FUNCTION (?:public\.)?(procrastinate_\w+)\(", schema))
    labels = {
        f"{kind}.{label}"
        for kind, body in re.findall(r"CREATE TYPE (\w+) AS ENUM \((.*?)\);", schema, re.DOTALL)
        for label in re.findall(r"'(\w+)'", body)
    }
    return functions, labels


def schema_mismatch(missing: list[str]) -> str:
    version = procrastinate.__version__
    return (
        f"The job queue's tables in PostgreSQL (procrastinate) do not match procrastinate "
        f"{version}, installed here: missing {', '.join(missing)}. If this voxserve is the "
        "newer one, stop every voxserve server and worker, then apply, in name order, the "
        "migration files newer than the procrastinate version that created the tables from "
        f"{SchemaManager.get_migrations_path()} (`procrastinate schema --migrations-path`), "
        'e.g. psql "$DATABASE_URL" -f <file>; see '
        "https://procrastinate.readthedocs.io/en/stable/howto/production/migrations.html. "
        "If a newer voxserve upgraded them, upgrade this one."
    )


@contextlib.asynccontextmanager
async def open_batch_queue(
    database_url: str, settings: BatchSettings
) -> AsyncIterator[ProcrastinateBatchQueue]:
    """The batch queue, open for as long as the context lasts."""
    await ensure_schema(database_url)
    app = create_app(database_url, settings)
    async with app.open_async():
        yield ProcrastinateBatchQueue(app, settings)


class ProcrastinateBatchQueue:
    """``BatchQueue`` on procrastinate (see the module docstring)."""

    def __init__(self, app: procrastinate.App, settings: BatchSettings) -> None:
        self._app = app
        self._settings = settings

    async def enqueue(self, job_id: str) -> int:
        return await self._task(job_id).defer_async(job_id=job_id)

    async def requeue(self, job_id: str) -> int | None:
        held = await self._app.job_manager.list_jobs_async(queue=QUEUE_NAME, lock=job_id)
        if any(job.status in LIVE for job in held):
            return None
        try:  # the queueing lock keeps two workers healing at once from queueing it twice
            return await self._task(job_id).defer_async(job_id=job_id)
        except AlreadyEnqueued:
            return None

    def _task(self, job_id: str) -> JobDeferrer:
        # lock: one run of a batch job at a time; queueing_lock: one waiting in the queue.
        return self._app.configure_task(
            TASK_NAME, queue=QUEUE_NAME, lock=job_id, queueing_lock=job_id
        )

    async def abort(self, queue_job_id: int) -> bool:
        manager = self._app.job_manager
        await manager.cancel_job_by_id_async(queue_job_id, abort=True)
        found = list(await manager.list_jobs_async(id=queue_job_id))
        # No such job any more (it ended and was deleted): nothing will run it either.
        return not found or found[0].status == Status.CANCELLED.value

    async def run_worker(self, runner: JobRunner, *, handle_signals: bool) -> None:
        s = self._settings
        recovery = asyncio.create_task(self._retry_stalled_jobs())
        try:
            await self._app.run_worker_async(
                queues=[QUEUE_NAME],
                concurrency=s.concurrency,
                additional_context={RUNNER: runner},
                update_heartbeat_interval=s.heartbeat_seconds,
                stalled_worker_timeout=s.stalled_after_seconds,
                abort_job_polling_interval=s.abort_poll_seconds,
                shutdown_graceful_timeout=s.shutdown_grace_seconds,
                install_signal_handlers=handle_signals,
                delete_jobs="successful",
            )
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery

    async def _retry_stalled_jobs(self) -> None:
        """procrastinate's recipe for jobs whose worker died: retry them, now and then."""
        manager = self._app.job_manager
        interval = max(self._settings.stalled_after_seconds / 3, 0.5)
        while True:
            try:
                stalled = await manager.get_stalled_jobs(
                    queue=QUEUE_NAME, seconds_since_heartbeat=self._settings.stalled_after_seconds
                )
                for job in stalled:
                    log.warning("batch: retrying job %s, whose worker stopped", job.id)
                    with contextlib.suppress(ConnectorException):
                        await manager.retry_job(job)
            except Exception:
                log.exception("batch: looking for stalled jobs failed")
            await asyncio.sleep(interval)
