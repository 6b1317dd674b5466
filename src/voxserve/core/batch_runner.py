"""Runs one batch job: its requests one after another, each outcome stored as soon as it is
known, then the output files.

Run by a worker of the job queue (``BatchQueue.run_worker``). Running a job again (a worker died,
the queue retried it) carries on at the first request without an outcome; a job that has ended
is left alone. Between requests the runner checks for a cancellation and for the job's timeout;
a cancellation that arrives during a request cancels the request itself (the worker cancels the
task), and the job ends CANCELLED. Each request is metered as its owner's request, like the
synchronous API (refusals leave a record too).

The output file holds one JSON line per request that succeeded, the error file one per request
that failed, both in request order::

    {"id": "<job>:<n>", "custom_id": "...", "response": {"status_code": 200, "body": {...}},
     "error": null}
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from voxserve.core.batch_types import BatchEndpoint, BatchOutcome, deadline, is_final
from voxserve.core.files import FileService
from voxserve.core.ids import utcnow
from voxserve.core.transcription import TranscriptionService
from voxserve.core.usage import UsageService, track_request
from voxserve.errors import EngineFailure, Overloaded
from voxserve.storage.batches import BatchJobRecord, BatchRepository, BatchRequestRecord

log = logging.getLogger(__name__)
OUTPUT_PURPOSE = "batch"
MAX_JOB_ERRORS = 20
"""Distinct failure messages listed in a job's ``errors``."""
BUSY_RETRIES = 8
"""Times a request that found the server busy (429) is asked again before it fails."""


class BatchRunner:
    """Runs batch jobs (see the module docstring); shared by every worker of a process."""

    def __init__(
        self,
        repo: BatchRepository,
        files: FileService,
        transcription: TranscriptionService,
        usage: UsageService,
        endpoints: Mapping[str, BatchEndpoint],
    ) -> None:
        self._repo = repo
        self._files = files
        self._transcription = transcription
        self._usage = usage
        self.endpoints = dict(endpoints)
        self.busy_backoff_seconds = 1.0
        """First wait before asking a busy server again (doubling, at most 30 s)."""

    async def run(self, job_id: str) -> None:
        """Run the job to its end (or to a cancellation, its timeout, or this task's
        cancellation: then the job stays RUNNING for the queue to run again, unless it was
        being cancelled)."""
        job = await self._start(job_id)
        if job is None:
            return
        try:
            final = await self._run_requests(job)
        except asyncio.CancelledError:
            await asyncio.shield(self._after_interruption(job_id))
            raise
        except Exception:
            log.exception("batch job %s failed", job_id)
            await self.finish(job_id, "FAILED", error="The batch job failed on the server.")
            return
        await self.finish(job_id, final)

    async def finish(
        self, job_id: str, status: str, *, error: str | None = None
    ) -> BatchJobRecord | None:
        """Write the output and error files of the requests that ran, and end the job with
        ``status`` (None when it had already ended)."""
        job = await self._repo.get_by_id(job_id)
        if job is None or is_final(job):
            return None
        done = await self._repo.finished_requests(job_id)
        if status == "SUCCESS" and done and not any(_succeeded(r) for r in done):
            status = "FAILED"
        files = await self._write_files(job, done)
        changes: dict[str, Any] = {
            "status": status,
            "completed_at": utcnow(),
            "errors": _job_errors(done, error),
            **files,
        }
        running = ("QUEUED", "RUNNING", "CANCELLATION_REQUESTED")
        ended = await self._repo.transition(job_id, running, changes)
        if ended is None:  # another worker or a cancel ended it meanwhile: its files win
            for file_id in filter(None, files.values()):
                await self._files.delete(job.owner_id, file_id)
        return ended

    def output_line(self, job: BatchJobRecord, request: BatchRequestRecord) -> dict[str, Any]:
        """One line of the output (or error) file for a request that ran."""
        body = dict(request.response or {})
        error = None
        if not _succeeded(request):
            error = {"message": _message(body), "code": request.status_code}
        return {
            "id": f"{job.id}:{request.index}",
            "custom_id": request.custom_id,
            "response": {"status_code": request.status_code, "body": body},
            "error": error,
        }

    async def _start(self, job_id: str) -> BatchJobRecord | None:
        job = await self._repo.get_by_id(job_id)
        if job is None or is_final(job):
            return None
        if job.status == "CANCELLATION_REQUESTED":
            await self.finish(job_id, "CANCELLED")
            return None
        started = {"status": "RUNNING", "started_at": job.started_at or utcnow()}
        running = await self._repo.transition(job_id, ("QUEUED", "RUNNING"), started)
        if running is None:  # cancelled in the meantime
            await self.finish(job_id, "CANCELLED")
        return running

    async def _run_requests(self, job: BatchJobRecord) -> str:
        """Run every request without an outcome; the status the job ends with."""
        endpoint = self.endpoints[job.endpoint]
        latest: BatchJobRecord | None = job
        for request in await self._repo.pending_requests(job.id):
            stop = _stop_reason(latest)
            if stop is not None:
                return stop
            outcome = await self._run_one(job, endpoint, request)
            done = replace(
                request,
                status_code=outcome.status_code,
                response=dict(outcome.body),
                finished_at=utcnow(),
            )
            # The job as this outcome left it: a cancel asked meanwhile shows in its status.
            latest = await self._repo.record_outcome(done, succeeded=outcome.succeeded)
        return _stop_reason(latest) or "SUCCESS"

    async def _run_one(
        self, job: BatchJobRecord, endpoint: BatchEndpoint, request: BatchRequestRecord
    ) -> BatchOutcome:
        """One request; a busy server (429: engine or decode queue full) is waited for and
        asked again, as a client would, rather than failing the request."""
        for attempt in range(BUSY_RETRIES + 1):
            with track_request() as tracker:
                outcome = await self._attempt(job, endpoint, request)
                busy = outcome.status_code == Overloaded.status and attempt < BUSY_RETRIES
                if not outcome.succeeded and not busy and not tracker.recorded:
                    await self._usage.record_failure(
                        job.owner_id, endpoint.metered_as, outcome.status_code
                    )
            if not busy:
                break
            await asyncio.sleep(min(self.busy_backoff_seconds * 2**attempt, 30.0))
        return outcome

    async def _attempt(
        self, job: BatchJobRecord, endpoint: BatchEndpoint, request: BatchRequestRecord
    ) -> BatchOutcome:
        try:
            return await endpoint.run(request.body, job.model, job.owner_id, self._transcription)
        except Exception:
            log.exception("batch job %s request %d failed", job.id, request.index)
            failure = EngineFailure("The request failed on the server.")
            return BatchOutcome(failure.status, endpoint.error_body(failure))

    async def _after_interruption(self, job_id: str) -> None:
        job = await self._repo.get_by_id(job_id)
        if job is not None and job.status == "CANCELLATION_REQUESTED":
            await self.finish(job_id, "CANCELLED")

    async def _write_files(
        self, job: BatchJobRecord, done: list[BatchRequestRecord]
    ) -> dict[str, str | None]:
        ok = [self.output_line(job, r) for r in done if _succeeded(r)]
        failed = [self.output_line(job, r) for r in done if not _succeeded(r)]
        return {
            "output_file": await self._upload(job, "output", ok),
            "error_file": await self._upload(job, "error", failed),
        }

    async def _upload(
        self, job: BatchJobRecord, kind: str, lines: list[dict[str, Any]]
    ) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        record = await self._files.upload(
            job.owner_id,
            filename=f"{job.id}-{kind}.jsonl",
            data=data.encode(),
            content_type="application/jsonl",
            purpose=OUTPUT_PURPOSE,
        )
        return record.id


def _succeeded(request: BatchRequestRecord) -> bool:
    return request.status_code is not None and request.status_code < 400


def _message(body: Mapping[str, Any]) -> str:
    message = body.get("message")
    if isinstance(message, str):
        return message
    if isinstance(message, Mapping) and isinstance(message.get("detail"), str):
        return str(message["detail"])
    return "The request failed."


def _job_errors(done: list[BatchRequestRecord], error: str | None) -> list[dict[str, Any]]:
    counts = Counter(_message(r.response or {}) for r in done if not _succeeded(r))
    errors = [{"message": m, "count": n} for m, n in counts.most_common(MAX_JOB_ERRORS)]
    if error is not None:
        errors.insert(0, {"message": error, "count": 1})
    return errors


def _stop_reason(job: BatchJobRecord | None) -> str | None:
    """Why a running job must stop now (None: it goes on); ``job`` as last read."""
    if job is None or job.status == "CANCELLATION_REQUESTED":
        return "CANCELLED"
    if utcnow() >= deadline(job):
        return "TIMEOUT_EXCEEDED"
    return None
