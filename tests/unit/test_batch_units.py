"""Batch pieces that need no database: .jsonl input files, the queue's database URL, and when
``serve`` runs a batch worker."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_architecture import ALL, SRC, area, imports_of
from voxserve.core.batch import InlineRequest, parse_jsonl
from voxserve.core.batch_runner import BatchRunner
from voxserve.core.batch_types import BatchOutcome
from voxserve.core.ids import utcnow
from voxserve.errors import InvalidRequest, VoxError
from voxserve.jobs.queue import libpq_url
from voxserve.settings import Settings
from voxserve.storage.batches import BatchJobRecord, BatchRequestRecord


def test_a_jsonl_file_gives_one_request_per_line() -> None:
    data = b'\xef\xbb\xbf{"custom_id": 7, "body": {"file_id": "f"}}\n\n{"body": {"file_url": "u"}}'
    assert parse_jsonl("file-1", data) == [
        InlineRequest({"file_id": "f"}, "7"),
        InlineRequest({"file_url": "u"}, None),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "is not UTF-8 text"),
        (b'{"body": {}}\n{oops', "line 2 is not JSON"),
        (b'{"custom_id": "a"}', 'line 1: each line must be {"custom_id"'),
        (b'[{"body": {}}]', "line 1: each line must be"),
    ],
)
def test_a_bad_jsonl_file_names_the_file_and_line(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match="file-1") as refused:
        parse_jsonl("file-1", data)
    assert message in refused.value.message


def test_the_queue_takes_a_libpq_url() -> None:
    url = "postgresql+asyncpg://u:p%40ss@db:5433/voxserve"
    assert libpq_url(url) == "postgresql://u:p%40ss@db:5433/voxserve"


@pytest.mark.parametrize(
    ("database_url", "run_in_serve", "expected"),
    [
        (None, None, False),
        (None, True, False),
        ("postgresql+asyncpg://db/v", None, True),
        ("postgresql://db/v", False, False),
        ("postgres://db/v", True, True),
    ],
)
def test_serve_runs_a_batch_worker_on_postgresql_unless_told_not_to(
    tmp_path: Path, database_url: str | None, run_in_serve: bool | None, expected: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        batch={"run_in_serve": run_in_serve},  # type: ignore[arg-type]
    )
    assert settings.runs_batch_in_serve is expected


def test_only_the_jobs_package_knows_the_job_queue() -> None:
    """Core reaches the queue through ``BatchQueue``; procrastinate stays in ``voxserve.jobs``
    (and ``bootstrap``, the composition root, which opens it)."""
    for path in ALL:
        if area(path) == "jobs" or path.name == "bootstrap.py":
            continue
        names = imports_of(path)
        bad = {n for n in names if n.split(".")[0] in ("procrastinate", "psycopg")}
        bad |= {n for n in names if n.startswith("voxserve.jobs")}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


class FakeBusyEndpoint:
    """A fake batch endpoint that answers 429 (busy) ``busy`` times, then 200."""

    path = "/v1/audio/transcriptions"
    metered_as = "transcription"

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.calls = 0

    def check(self, body: Mapping[str, Any], model: str | None) -> str | None:
        return model

    async def run(
        self, body: object, model: object, owner_id: str, service: object
    ) -> BatchOutcome:
        self.calls += 1
        if self.calls <= self.busy:
            return BatchOutcome(429, {"message": "busy"})
        return BatchOutcome(200, {"text": "done"})

    def error_body(self, exc: VoxError) -> Mapping[str, Any]:
        return {"message": exc.message}


class FakeUsage:
    """Records the refusals the runner reports (a fake of ``UsageService``)."""

    def __init__(self) -> None:
        self.failures: list[int] = []

    async def record_failure(self, owner_id: str, endpoint: str, status: int) -> None:
        self.failures.append(status)


@pytest.mark.parametrize(
    ("busy", "status", "calls", "failures"), [(2, 200, 3, []), (99, 429, 9, [429])]
)
async def test_a_busy_server_is_asked_again_before_a_request_fails(
    busy: int, status: int, calls: int, failures: list[int]
) -> None:
    endpoint, usage = FakeBusyEndpoint(busy), FakeUsage()
    runner = BatchRunner(None, None, None, usage, {endpoint.path: endpoint})  # type: ignore[arg-type]
    runner.busy_backoff_seconds = 0.001
    job = BatchJobRecord("batch-1", "alice", endpoint.path, "RUNNING", utcnow(), 24)
    request = BatchRequestRecord("batch-1", 0, None, {"file_id": "f"})

    outcome = await runner._run_one(job, endpoint, request)

    assert (outcome.status_code, endpoint.calls, usage.failures) == (status, calls, failures)
