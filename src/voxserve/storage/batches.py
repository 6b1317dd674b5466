"""Batch jobs (Mistral's Batch API): the records and the repository protocol.

A batch job holds its requests (one row each, expanded from inline requests or ``.jsonl`` input
files when the job is created), and each request's outcome as soon as it is known: a worker
that dies mid-job loses at most the request it was running, and the job resumes from the first
request without an outcome. Only PostgreSQL stores batch jobs (the job queue lives there).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

JOB_STATUSES = (
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "TIMEOUT_EXCEEDED",
    "CANCELLATION_REQUESTED",
    "CANCELLED",
)
"""Every status of a batch job, as the Mistral SDK spells them."""
FINAL_STATUSES = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})


@dataclass(frozen=True)
class BatchJobRecord:
    id: str
    owner_id: str
    endpoint: str
    status: str
    """One of ``JOB_STATUSES``."""
    created_at: datetime
    timeout_hours: int
    model: str | None = None
    metadata: Mapping[str, Any] | None = None
    input_files: tuple[str, ...] = ()
    total_requests: int = 0
    completed_requests: int = 0
    succeeded_requests: int = 0
    failed_requests: int = 0
    errors: tuple[Mapping[str, Any], ...] = ()
    """Job-level errors: ``{"message", "count"}``."""
    output_file: str | None = None
    error_file: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    queue_job_id: int | None = None
    """The job queue's id of the job that runs this batch (to abort it)."""


@dataclass(frozen=True)
class BatchRequestRecord:
    """One request of a batch job, and its outcome once it has one."""

    job_id: str
    index: int
    """Position in the job (output lines keep this order)."""
    custom_id: str | None
    body: Mapping[str, Any]
    status_code: int | None = None
    """The HTTP status the request answered; None while it has not run."""
    response: Mapping[str, Any] | None = None
    """The response body (or error body) it answered."""
    finished_at: datetime | None = None


@dataclass(frozen=True)
class BatchJobFilter:
    """Filters of ``BatchRepository.list``; empty means no filter."""

    model: str | None = None
    statuses: tuple[str, ...] = ()
    created_after: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    newest_first: bool = True


class BatchRepository(Protocol):
    """Batch jobs and their requests. Another owner's job is simply not found (None)."""

    async def create(
        self, job: BatchJobRecord, requests: Sequence[BatchRequestRecord]
    ) -> BatchJobRecord:
        """Insert the job and all its requests in one transaction."""

    async def get(self, owner_id: str, job_id: str) -> BatchJobRecord | None: ...

    async def get_by_id(self, job_id: str) -> BatchJobRecord | None:
        """Any owner's job (for the worker that runs it)."""

    async def list(
        self, owner_id: str, query: BatchJobFilter, *, offset: int, limit: int
    ) -> tuple[builtins.list[BatchJobRecord], int]:
        """A page of the owner's jobs and how many match in all."""

    async def update(self, job_id: str, changes: Mapping[str, Any]) -> BatchJobRecord | None:
        """Set fields (names as on ``BatchJobRecord``); None when no job has this id."""

    async def transition(
        self, job_id: str, from_statuses: Sequence[str], changes: Mapping[str, Any]
    ) -> BatchJobRecord | None:
        """Apply ``changes`` only while the job's status is one of ``from_statuses`` (checked
        and set in one statement); None when it is not (or no such job)."""

    async def delete(self, owner_id: str, job_id: str, statuses: Sequence[str]) -> bool:
        """Delete the owner's job and its requests while its status is one of ``statuses``
        (checked and deleted in one statement); False when nothing was deleted."""

    async def unfinished(self, created_before: datetime) -> builtins.list[BatchJobRecord]:
        """Every owner's QUEUED or RUNNING jobs created before ``created_before``, oldest
        first (for the worker that re-queues jobs the queue lost)."""

    async def pending_requests(self, job_id: str) -> builtins.list[BatchRequestRecord]:
        """The job's requests without an outcome, in order."""

    async def finished_requests(self, job_id: str) -> builtins.list[BatchRequestRecord]:
        """The job's requests with an outcome, in order."""

    async def record_outcome(
        self, request: BatchRequestRecord, *, succeeded: bool
    ) -> BatchJobRecord | None:
        """Store the request's outcome and count it on the job (one transaction; a request
        that already has an outcome is not counted twice). Returns the updated job."""
