"""The Mistral shape's Batch API: ``/v1/batch/jobs`` (create, list, get, cancel, delete).
Jobs run in workers (``voxserve worker``, or inside ``serve``); on SQLite every route answers
400."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import QueryParams

from voxserve.api.adapters.mistral.protocol.batch import (
    BatchError,
    BatchJob,
    BatchJobList,
    CreateBatchJobRequest,
    DeletedBatchJob,
    JobStatus,
)
from voxserve.api.deps import BatchServiceDep, CurrentOwner
from voxserve.api.wire import MAX_PAGE
from voxserve.core.batch import (
    BatchJobFilter,
    BatchJobQuery,
    BatchJobRecord,
    InlineRequest,
    NewBatchJob,
)
from voxserve.errors import InvalidRequest

JobId = Annotated[str, Path(description="A batch job's id.", examples=["batch-3f9a1c"])]
router = APIRouter(tags=["batch (Mistral)"])


@router.post("/v1/batch/jobs", response_model=BatchJob)
async def create_batch_job(
    body: CreateBatchJobRequest, owner: CurrentOwner, batch: BatchServiceDep
) -> BatchJob:
    """Queue a batch job; every request is checked first (400 names the bad one)."""
    return batch_job(await batch.create(owner.id, new_job(body)))


@router.get("/v1/batch/jobs", response_model=BatchJobList)
async def list_batch_jobs(
    request: Request,
    owner: CurrentOwner,
    batch: BatchServiceDep,
    page: Annotated[int, Query(ge=0, le=MAX_PAGE)] = 0,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    model: str | None = None,
    agent_id: str | None = None,
    created_after: datetime | None = None,
    created_by_me: bool = False,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    order_by: Literal["created", "-created"] = "-created",
) -> BatchJobList:
    """The owner's batch jobs. Every other query parameter is a metadata filter (the SDK
    sends ``metadata={"k": "v"}`` as ``?k=v``): a job matches when its metadata holds each.
    ``created_by_me`` changes nothing (every key sees only its owner's jobs), and no job has an
    ``agent_id`` (agents are not served), so filtering by one finds none."""
    if agent_id is not None:
        return BatchJobList(data=[], total=0)
    filters = BatchJobFilter(
        model=model,
        statuses=tuple(status or ()),
        created_after=created_after,
        metadata=metadata_filter(request.query_params),
        newest_first=order_by == "-created",
    )
    query = BatchJobQuery(page=page, page_size=page_size, filters=filters)
    jobs, total = await batch.list(owner.id, query)
    return BatchJobList(data=[batch_job(j) for j in jobs], total=total)


LIST_PARAMETERS = frozenset(
    {"page", "page_size", "model", "agent_id", "created_after", "created_by_me", "status"}
    | {"order_by", "metadata"}
)


def metadata_filter(params: QueryParams) -> dict[str, str]:
    """The metadata a listed job must hold: every query parameter that is not one of the list's
    own, and the pairs of a ``metadata`` parameter given as a JSON object (for curl).

    Raises:
        InvalidRequest: a key given twice, or a ``metadata`` that is not a JSON object.
    """
    wanted: dict[str, str] = {}
    for key, value in params.multi_items():
        if key in LIST_PARAMETERS:
            continue
        if key in wanted:
            raise InvalidRequest(f"metadata: '{key}' is given twice.", field=key)
        wanted[key] = value
    if "metadata" in params:
        try:
            pairs = json.loads(params["metadata"])
        except ValueError:
            pairs = None
        if not isinstance(pairs, dict):
            raise InvalidRequest(
                'metadata: give it as a JSON object ({"key": "value"}) or as key=value '
                "query parameters.",
                field="metadata",
            )
        wanted.update({str(k): str(v) for k, v in pairs.items()})
    return wanted


@router.get("/v1/batch/jobs/{job_id}", response_model=BatchJob)
async def get_batch_job(
    job_id: JobId, owner: CurrentOwner, batch: BatchServiceDep, inline: bool | None = None
) -> BatchJob:
    """A batch job; ``inline=true`` adds its output lines so far as ``outputs``."""
    record = await batch.get(owner.id, job_id)
    job = batch_job(record)
    if inline:
        job.outputs = await batch.outputs(record)
    return job


@router.post("/v1/batch/jobs/{job_id}/cancel", response_model=BatchJob)
async def cancel_batch_job(job_id: JobId, owner: CurrentOwner, batch: BatchServiceDep) -> BatchJob:
    """Cancel: a queued job at once, a running one after (or during) its current request."""
    return batch_job(await batch.cancel(owner.id, job_id))


@router.delete("/v1/batch/jobs/{job_id}", response_model=DeletedBatchJob)
async def delete_batch_job(
    job_id: JobId, owner: CurrentOwner, batch: BatchServiceDep
) -> DeletedBatchJob:
    """Delete an ended job (409 while it is queued or running: cancel it first)."""
    await batch.delete(owner.id, job_id)
    return DeletedBatchJob(id=job_id)


def new_job(body: CreateBatchJobRequest) -> NewBatchJob:
    return NewBatchJob(
        endpoint=body.endpoint,
        requests=tuple(InlineRequest(r.body, r.custom_id) for r in body.requests or ()),
        input_files=tuple(body.input_files or ()),
        model=body.model,
        metadata=body.metadata,
        timeout_hours=body.timeout_hours,
        agent_id=body.agent_id,
    )


def batch_job(job: BatchJobRecord) -> BatchJob:
    return BatchJob(
        id=job.id,
        input_files=list(job.input_files),
        metadata=None if job.metadata is None else dict(job.metadata),
        endpoint=job.endpoint,
        model=job.model,
        output_file=job.output_file,
        error_file=job.error_file,
        errors=[BatchError(message=e["message"], count=e.get("count", 1)) for e in job.errors],
        status=job.status,
        created_at=_seconds(job.created_at),
        total_requests=job.total_requests,
        completed_requests=job.completed_requests,
        succeeded_requests=job.succeeded_requests,
        failed_requests=job.failed_requests,
        started_at=_seconds(job.started_at) if job.started_at else None,
        completed_at=_seconds(job.completed_at) if job.completed_at else None,
    )


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())
