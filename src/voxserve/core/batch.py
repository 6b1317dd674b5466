"""Batch jobs (Mistral's Batch API): many requests to one endpoint, run later by workers.

A job is created with its requests, inline or from ``.jsonl`` input files (uploaded with purpose
``batch``; each line ``{"custom_id", "body"}``), every body checked before anything is stored.
Workers of a job queue in PostgreSQL (``voxserve.jobs``, behind ``BatchQueue``) run the job's
requests one after another through the same services as the synchronous API, so each is metered
as its owner's request (``batch_runner``). A job's life::

    QUEUED -> RUNNING -> SUCCESS | FAILED | TIMEOUT_EXCEEDED
    QUEUED | RUNNING -> CANCELLATION_REQUESTED -> CANCELLED

Outcomes are stored per request, so a job interrupted by a dead worker or a restart resumes at
its first request without one. A job stored but never queued (its server died in between) is
queued again by a worker (``requeue_lost``). On SQLite there is no queue: the API answers 400.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from voxserve.core.batch_runner import BatchRunner
from voxserve.core.batch_types import BatchEndpoint, BatchQueue
from voxserve.core.files import FileService
from voxserve.core.ids import prefixed_id, utcnow
from voxserve.errors import Conflict, InvalidRequest, NotFound, Unsupported, VoxError
from voxserve.offload import run_in_thread
from voxserve.settings import BatchSettings
from voxserve.storage.batches import (
    FINAL_STATUSES,
    BatchJobFilter,
    BatchJobRecord,
    BatchRepository,
    BatchRequestRecord,
)

log = logging.getLogger(__name__)
NEEDS_POSTGRES = (
    "Batch jobs need PostgreSQL (VOXSERVE_DATABASE_URL=postgresql://...): their job queue "
    "lives there."
)
NOT_QUEUED = "The job could not be queued."
INPUT_PURPOSE = "batch"
MAX_CUSTOM_ID = 512


@dataclass(frozen=True)
class InlineRequest:
    body: Mapping[str, Any]
    custom_id: str | None = None


@dataclass(frozen=True)
class NewBatchJob:
    """A batch job as a client asks for it."""

    endpoint: str
    requests: tuple[InlineRequest, ...] = ()
    input_files: tuple[str, ...] = ()
    model: str | None = None
    metadata: Mapping[str, Any] | None = None
    timeout_hours: int = 24
    agent_id: str | None = None


@dataclass(frozen=True)
class BatchJobQuery:
    page: int = 0
    page_size: int = 100
    filters: BatchJobFilter = field(default_factory=BatchJobFilter)


class BatchService:
    """Create, read, list and cancel an owner's batch jobs (workers run them: ``BatchRunner``)."""

    def __init__(
        self,
        repo: BatchRepository,
        queue: BatchQueue,
        runner: BatchRunner,
        files: FileService,
        settings: BatchSettings,
    ) -> None:
        self._repo = repo
        self._queue = queue
        self._runner = runner
        self._files = files
        self._settings = settings

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(self._runner.endpoints)

    async def create(self, owner_id: str, new: NewBatchJob) -> BatchJobRecord:
        """Check every request, store the job with them, then queue it.

        Raises:
            InvalidRequest: an unsupported endpoint, no requests or too many, a bad input file
                or a bad request body (nothing is stored).
            NotFound: an input file that does not exist (or is another owner's).
        """
        endpoint = self._endpoint(new)
        requests = [*await self._file_requests(owner_id, new.input_files), *new.requests]
        self._check_count(len(requests))
        job_id = prefixed_id("batch")
        rows = await run_in_thread(_request_rows, job_id, requests, endpoint, new.model)
        job = BatchJobRecord(
            id=job_id,
            owner_id=owner_id,
            endpoint=endpoint.path,
            status="QUEUED",
            created_at=utcnow(),
            timeout_hours=new.timeout_hours,
            model=new.model,
            metadata=new.metadata,
            input_files=new.input_files,
            total_requests=len(rows),
        )
        job = await self._repo.create(job, rows)
        try:
            queue_job_id = await self._queue.enqueue(job.id)
        except BaseException:  # never a QUEUED job that no queue holds
            await asyncio.shield(self._runner.finish(job.id, "FAILED", error=NOT_QUEUED))
            raise
        return await self._repo.update(job.id, {"queue_job_id": queue_job_id}) or job

    async def get(self, owner_id: str, job_id: str) -> BatchJobRecord:
        """Raises NotFound (also for another owner's job)."""
        job = await self._repo.get(owner_id, job_id)
        if job is None:
            raise NotFound(f"Batch job '{job_id}' not found.", field="job_id")
        return job

    async def outputs(self, job: BatchJobRecord) -> builtins.list[dict[str, Any]]:
        """The lines of the output so far of ``job`` (from ``get``: successes and errors, in
        request order)."""
        done = await self._repo.finished_requests(job.id)
        return [self._runner.output_line(job, r) for r in done]

    async def list(self, owner_id: str, query: BatchJobQuery) -> tuple[list[BatchJobRecord], int]:
        offset = query.page * query.page_size
        return await self._repo.list(owner_id, query.filters, offset=offset, limit=query.page_size)

    async def cancel(self, owner_id: str, job_id: str) -> BatchJobRecord:
        """Ask the job to stop: a queued job is cancelled at once; a running one stops its
        current request (it is not charged) and ends CANCELLED. An ended job is answered as
        it is.

        Raises:
            NotFound: no such job for this owner.
        """
        job = await self.get(owner_id, job_id)
        requested = await self._repo.transition(
            job.id, ("QUEUED", "RUNNING"), {"status": "CANCELLATION_REQUESTED"}
        )
        if requested is None:
            return await self.get(owner_id, job_id)
        if job.queue_job_id is None or await self._queue.abort(job.queue_job_id):
            return await self._runner.finish(job.id, "CANCELLED") or requested
        return requested

    async def delete(self, owner_id: str, job_id: str) -> None:
        """Delete an ended job and its requests (its output and error files stay: they are
        files of their own, deleted through ``/v1/files``).

        Raises:
            NotFound: no such job for this owner.
            Conflict: the job has not ended (cancel it first).
        """
        job = await self.get(owner_id, job_id)
        if not await self._repo.delete(owner_id, job.id, tuple(FINAL_STATUSES)):
            raise Conflict(
                f"Batch job '{job.id}' is {job.status}: only an ended job can be deleted. "
                f"Cancel it (POST /v1/batch/jobs/{job.id}/cancel), then delete it once it is "
                "CANCELLED.",
                field="job_id",
            )

    async def run_worker(self, *, handle_signals: bool = False) -> None:
        """Run batch jobs in this process until cancelled (``serve``, ``voxserve worker``),
        queueing again, now and then, the jobs the queue lost (``requeue_lost``)."""
        healing = asyncio.create_task(self._requeue_lost_forever())
        try:
            await self._queue.run_worker(self._runner, handle_signals=handle_signals)
        finally:
            healing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await healing

    async def requeue_lost(self) -> builtins.list[str]:
        """Queue again every QUEUED or RUNNING job (older than ``lost_job_check_seconds``) that
        the queue does not hold: a server that died between storing a job and queueing it left
        it so. Returns their ids."""
        age = timedelta(seconds=self._settings.lost_job_check_seconds)
        found = []
        for job in await self._repo.unfinished(utcnow() - age):
            queue_job_id = await self._queue.requeue(job.id)
            if queue_job_id is not None:
                log.warning("batch: queued job %s again (the queue did not hold it)", job.id)
                await self._repo.update(job.id, {"queue_job_id": queue_job_id})
                found.append(job.id)
        return found

    async def _requeue_lost_forever(self) -> None:
        while True:
            try:
                await self.requeue_lost()
            except Exception:
                log.exception("batch: looking for jobs the queue lost failed")
            await asyncio.sleep(self._settings.lost_job_check_seconds)

    def _endpoint(self, new: NewBatchJob) -> BatchEndpoint:
        if new.agent_id:
            raise Unsupported("agent_id: agents are not served here.", field="agent_id")
        endpoint = self._runner.endpoints.get(new.endpoint)
        if endpoint is None:
            supported = ", ".join(sorted(self._runner.endpoints))
            raise InvalidRequest(
                f"endpoint: '{new.endpoint}' is not supported for batch jobs here; "
                f"supported: {supported}.",
                field="endpoint",
            )
        if not new.requests and not new.input_files:
            raise InvalidRequest(
                "Give the requests inline (requests) or as .jsonl files (input_files).",
                field="requests",
            )
        limit = self._settings.max_timeout_hours
        if not 1 <= new.timeout_hours <= limit:
            raise InvalidRequest(
                f"timeout_hours: must be between 1 and {limit}.", field="timeout_hours"
            )
        return endpoint

    def _check_count(self, count: int) -> None:
        limit = self._settings.max_requests
        if count > limit:
            raise InvalidRequest(
                f"A batch job holds at most {limit} requests (got {count}; "
                "VOXSERVE_BATCH__MAX_REQUESTS).",
                field="requests",
            )

    async def _file_requests(
        self, owner_id: str, file_ids: Sequence[str]
    ) -> builtins.list[InlineRequest]:
        found: builtins.list[InlineRequest] = []
        for file_id in file_ids:
            record, data = await self._files.content(owner_id, file_id)
            if record.purpose != INPUT_PURPOSE:
                raise InvalidRequest(
                    f"input_files: '{file_id}' was uploaded with purpose '{record.purpose}'; "
                    f"batch input files need purpose '{INPUT_PURPOSE}'.",
                    field="input_files",
                )
            found.extend(await run_in_thread(parse_jsonl, file_id, data))  # up to 10,000 lines
            self._check_count(len(found))
        return found


def parse_jsonl(file_id: str, data: bytes) -> list[InlineRequest]:
    """The requests of a ``.jsonl`` input file (blank lines skipped).

    Raises:
        InvalidRequest: text that is not UTF-8, a line that is not a JSON object with an object
            ``body`` (the message names the file and line).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest(f"input_files: '{file_id}' is not UTF-8 text.") from None
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"input_files: '{file_id}' line {number}"
        try:
            item = json.loads(line)
        except ValueError:
            raise InvalidRequest(f"{where} is not JSON.", field="input_files") from None
        if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
            raise InvalidRequest(
                f'{where}: each line must be {{"custom_id": ..., "body": {{...}}}}.',
                field="input_files",
            )
        custom_id = item.get("custom_id")
        found.append(InlineRequest(item["body"], None if custom_id is None else str(custom_id)))
    return found


def _request_rows(
    job_id: str, requests: Sequence[InlineRequest], endpoint: BatchEndpoint, model: str | None
) -> list[BatchRequestRecord]:
    """Every request checked and made a row (CPU work: run off the loop)."""
    return [_request_row(job_id, i, r, endpoint, model) for i, r in enumerate(requests)]


def _request_row(
    job_id: str, index: int, request: InlineRequest, endpoint: BatchEndpoint, model: str | None
) -> BatchRequestRecord:
    where = f"requests[{index}]"
    if request.custom_id is not None and len(request.custom_id) > MAX_CUSTOM_ID:
        raise InvalidRequest(
            f"{where}.custom_id: at most {MAX_CUSTOM_ID} characters.", field="custom_id"
        )
    try:
        endpoint.check(request.body, model)
    except VoxError as exc:
        label = f"{where} (custom_id '{request.custom_id}')" if request.custom_id else where
        raise InvalidRequest(f"{label}: {exc.message}", field="body") from None
    return BatchRequestRecord(job_id, index, request.custom_id, dict(request.body))
