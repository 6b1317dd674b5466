"""The pieces batch jobs are made of, shared by ``core.batch`` (the service) and
``core.batch_runner`` (what workers run): an endpoint's outcome, the endpoint and queue
protocols."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from voxserve.errors import VoxError
from voxserve.storage.batches import FINAL_STATUSES, BatchJobRecord

if TYPE_CHECKING:
    from voxserve.core.transcription import TranscriptionService


class QueueNotReady(RuntimeError):
    """The job queue cannot start as it is (its tables do not match the queue's code); the
    message says what to run."""


class JobRunner(Protocol):
    """Runs one batch job to its end (``BatchRunner``)."""

    async def run(self, job_id: str) -> None: ...


@dataclass(frozen=True)
class BatchOutcome:
    """What one request answered: its HTTP status and body (a response or an error)."""

    status_code: int
    body: Mapping[str, Any]

    @property
    def succeeded(self) -> bool:
        return self.status_code < 400


class BatchEndpoint(Protocol):
    """One API endpoint that batch jobs may target, in the wire shape of its API."""

    @property
    def path(self) -> str:
        """The endpoint as jobs name it, e.g. ``/v1/audio/transcriptions``."""

    @property
    def metered_as(self) -> str:
        """The usage endpoint its requests are recorded as (``transcription``)."""

    def check(self, body: Mapping[str, Any], model: str | None) -> str | None:
        """Validate a request body before the job is stored; return the model it names (or
        ``model``, the job's).

        Raises:
            VoxError: the body is not a valid request (its message says why).
        """

    async def run(
        self,
        body: Mapping[str, Any],
        model: str | None,
        owner_id: str,
        transcription: TranscriptionService,
    ) -> BatchOutcome:
        """Serve one request as the synchronous API would; a refusal is an outcome (its
        status and error body), never an exception."""

    def error_body(self, exc: VoxError) -> Mapping[str, Any]:
        """The error body this API answers for ``exc``."""


class BatchQueue(Protocol):
    """The job queue that runs batch jobs (``voxserve.jobs``: procrastinate on PostgreSQL)."""

    async def enqueue(self, job_id: str) -> int:
        """Queue the batch job; returns the queue's id for it."""

    async def requeue(self, job_id: str) -> int | None:
        """Queue the batch job unless the queue holds it already (waiting or running; safe
        when several workers ask at once); the new queue id, or None when it was held."""

    async def abort(self, queue_job_id: int) -> bool:
        """Stop the queued job: True when it had not started (it never will), False when a
        worker is running it (the worker is told to stop) or it has ended."""

    async def run_worker(self, runner: JobRunner, *, handle_signals: bool) -> None:
        """Run batch jobs with ``runner`` until cancelled (or SIGTERM/SIGINT when
        ``handle_signals``)."""


def deadline(job: BatchJobRecord) -> datetime:
    """When the job times out (``timeout_hours`` after it was created)."""
    return job.created_at + timedelta(hours=job.timeout_hours)


def is_final(job: BatchJobRecord) -> bool:
    return job.status in FINAL_STATUSES
