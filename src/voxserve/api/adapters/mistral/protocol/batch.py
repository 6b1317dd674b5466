"""Mistral Batch API wire models (``/v1/batch/jobs``), as the SDK (3.7.0) defines them, and the
body of a batch transcription request."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal[
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "TIMEOUT_EXCEEDED",
    "CANCELLATION_REQUESTED",
    "CANCELLED",
]


class BatchRequest(BaseModel):
    """One request of a job, inline."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    custom_id: str | None = None
    """Your id for the request; its output line carries it."""
    body: dict[str, Any]
    """The request as the endpoint takes it, in JSON (for transcriptions: ``file_id`` or
    ``file_url``, ``model``, ``language``, ``timestamp_granularities``...)."""


class CreateBatchJobRequest(BaseModel):
    """``POST /v1/batch/jobs``."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra={
            "examples": [
                {
                    "endpoint": "/v1/audio/transcriptions",
                    "model": "voxtral-mini-latest",
                    "requests": [{"custom_id": "a", "body": {"file_id": "file-3f9a1c"}}],
                }
            ]
        },
    )

    endpoint: str
    """The endpoint every request goes to; here ``/v1/audio/transcriptions``."""
    input_files: list[str] | None = None
    """Ids of ``.jsonl`` files uploaded with purpose ``batch``: one
    ``{"custom_id", "body"}`` object per line."""
    requests: list[BatchRequest] | None = None
    """The requests inline (instead of, or after, the input files' requests)."""
    model: str | None = None
    """The model of requests whose body names none."""
    agent_id: str | None = None
    """Not served here (400)."""
    metadata: dict[str, str] | None = None
    """Your key/value pairs, kept with the job."""
    timeout_hours: int = Field(24, ge=1)
    """The job stops (``TIMEOUT_EXCEEDED``) this long after it was created."""


class BatchError(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    message: str
    count: int = 1
    """How many requests failed with this message."""


class BatchJob(BaseModel):
    """A batch job (``BatchJob`` in the SDK)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    object: Literal["batch"] = "batch"
    input_files: list[str]
    metadata: dict[str, Any] | None = None
    endpoint: str
    model: str | None = None
    agent_id: str | None = None
    output_file: str | None = None
    """A ``.jsonl`` file (``/v1/files/{id}/content``): one line per request that succeeded,
    ``{"id", "custom_id", "response": {"status_code", "body"}, "error": null}``."""
    error_file: str | None = None
    """The same lines for requests that failed (``body`` the error; ``error`` its message)."""
    errors: list[BatchError]
    outputs: list[dict[str, Any]] | None = None
    """With ``GET ...?inline=true``: the output lines so far (successes and failures)."""
    status: JobStatus
    created_at: int
    """Unix seconds."""
    total_requests: int
    completed_requests: int
    succeeded_requests: int
    failed_requests: int
    started_at: int | None = None
    completed_at: int | None = None


class BatchJobList(BaseModel):
    """``GET /v1/batch/jobs``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    data: list[BatchJob]
    object: Literal["list"] = "list"
    total: int
    """Jobs that match, over every page."""


class DeletedBatchJob(BaseModel):
    """``DELETE /v1/batch/jobs/{job_id}`` (``DeleteBatchJobResponse`` in the SDK)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    object: Literal["batch"] = "batch"
    deleted: bool = True


class BatchTranscriptionBody(BaseModel):
    """The ``body`` of a batch request to ``/v1/audio/transcriptions``: the transcription form's
    fields, as JSON, with the audio as ``file_id`` or ``file_url``."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    file_id: str | None = None
    """A file uploaded to ``/v1/files``."""
    file_url: str | None = None
    """An http(s) URL of the audio (fetched by the worker; private addresses are refused)."""
    model: str | None = None
    language: str | None = None
    temperature: float | None = None
    timestamp_granularities: list[Literal["segment", "word"]] = []
    context_bias: list[str] = []
    diarize: bool = False
    stream: Literal[False] = False
    """Batch answers are never streamed."""
