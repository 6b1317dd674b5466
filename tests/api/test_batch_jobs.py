"""Batch jobs through the mistralai SDK against a live server on PostgreSQL, with fake engines
(named as fakes): the wire, counters, output files, validation, owner scoping, cancellation, a
job that outlives the server that took it, and the 400 on SQLite. Real transcription of long
audio by a separate worker process (killed and restarted) is in tests/e2e/test_batch_real.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.client.models import BatchJob
from sqlalchemy import Engine, event
from typer.testing import CliRunner

from tests.storage.conftest import postgres_server_url  # noqa: F401 (a fixture)
from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from tests.support.postgres import create_database, drop_database
from tests.support.web_keys import make_keys
from voxserve.cli.main import app
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

POSTGRES = pytest.mark.postgres
TRANSCRIPT = "This is a fake transcript."
ENDPOINT = "/v1/audio/transcriptions"


class SlowFakeSTTEngine(FakeSTTEngine):
    """The fake STT engine, taking ``seconds`` per request (to cancel a job mid-way)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(TRANSCRIPT)
        self.seconds = seconds

    def transcribe(self, audio, options):  # type: ignore[no-untyped-def]
        time.sleep(self.seconds)
        return super().transcribe(audio, options)


@pytest.fixture
async def pg_settings(
    postgres_server_url: str,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> AsyncIterator[Settings]:
    url = await create_database(postgres_server_url)
    yield Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        database_url=url,
        batch={
            "heartbeat_seconds": 1,
            "stalled_after_seconds": 3,
            "abort_poll_seconds": 0.5,
            "lost_job_check_seconds": 0.5,
        },
    )
    await drop_database(postgres_server_url, url)


@pytest.fixture
def server(pg_settings: Settings) -> Iterator[LiveServer]:
    with run_server(pg_settings, [FakeTTSEngine(), SlowFakeSTTEngine(0.05)]) as live:
        yield live


def client(server: LiveServer, key: str | None = None) -> Mistral:
    return Mistral(server_url=server.url, api_key=key or "any")


def upload(mistral: Mistral, name: str, data: bytes, purpose: str = "audio") -> str:
    file = {"file_name": name, "content": data}
    return mistral.files.upload(file=file, purpose=purpose).id  # type: ignore[arg-type]


def wait_for(mistral: Mistral, job_id: str, *statuses: str, timeout: float = 30) -> BatchJob:
    deadline = time.monotonic() + timeout
    while True:
        job = mistral.batch.jobs.get(job_id=job_id)
        if job.status in statuses or time.monotonic() > deadline:
            assert job.status in statuses, job
            return job
        time.sleep(0.1)


def lines(mistral: Mistral, file_id: str) -> list[dict[str, object]]:
    data = mistral.files.download(file_id=file_id).read()
    return [json.loads(line) for line in data.decode().splitlines()]


@POSTGRES
def test_an_inline_batch_runs_every_request_and_writes_its_files(server: LiveServer) -> None:
    mistral = client(server)
    first = upload(mistral, "a.wav", tone_wav(1.0))
    second = upload(mistral, "b.wav", tone_wav(2.0))
    requests = [
        {"custom_id": "a", "body": {"file_id": first, "language": "en"}},
        {"custom_id": "b", "body": {"file_id": second, "timestamp_granularities": ["word"]}},
        {"custom_id": "gone", "body": {"file_id": "file-missing"}},
    ]
    created = mistral.batch.jobs.create(
        endpoint=ENDPOINT,
        model="voxtral-mini-latest",
        requests=requests,  # type: ignore[arg-type]
        metadata={"run": "1"},
    )
    assert created.status in ("QUEUED", "RUNNING")
    assert created.total_requests == 3

    job = wait_for(mistral, created.id, "SUCCESS")

    assert (job.completed_requests, job.succeeded_requests, job.failed_requests) == (3, 2, 1)
    assert job.metadata == {"run": "1"} and job.model == "voxtral-mini-latest"
    assert job.started_at is not None and job.completed_at is not None
    assert job.completed_at >= job.started_at >= job.created_at
    assert [e.message for e in job.errors] == ["File 'file-missing' not found."]
    ok = lines(mistral, job.output_file)  # type: ignore[arg-type]
    assert [line["custom_id"] for line in ok] == ["a", "b"]
    assert all(line["response"]["status_code"] == 200 for line in ok)  # type: ignore[index]
    bodies = [line["response"]["body"] for line in ok]  # type: ignore[index]
    assert [b["text"] for b in bodies] == [TRANSCRIPT, TRANSCRIPT]
    assert bodies[0]["model"] == "voxtral-mini-latest"
    assert "words" in bodies[1]["segments"][0]
    (failed,) = lines(mistral, job.error_file)  # type: ignore[arg-type]
    assert failed["custom_id"] == "gone"
    assert failed["response"]["status_code"] == 404  # type: ignore[index]
    assert failed["response"]["body"]["object"] == "error"  # type: ignore[index]
    with reading("batch_requests") as read:
        polled = mistral.batch.jobs.get(job_id=job.id)
    assert (polled.outputs, read) == (None, [])  # a status poll reads no request rows
    with reading("batch_requests") as read, reading("batch_jobs") as jobs_read:
        inline = mistral.batch.jobs.get(job_id=job.id, inline=True)
    assert [o["custom_id"] for o in inline.outputs or []] == ["a", "b", "gone"]
    assert read  # the same count sees the outputs read when they are asked for
    assert len(jobs_read) == 1  # and the job row once


@contextmanager
def reading(table: str) -> Iterator[list[str]]:
    """The statements any engine in this process (the live server's too) sends meanwhile that
    read ``table`` (a job's outputs are in its request rows; a finished job's worker sends
    none)."""
    seen: list[str] = []

    def _execute(*args: Any) -> None:
        statement: str = args[2]
        if f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", _execute)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", _execute)


@POSTGRES
def test_each_request_is_metered_as_its_owner_transcription(server: LiveServer) -> None:
    mistral = client(server)
    audio = upload(mistral, "a.wav", tone_wav(1.5))
    requests = [{"body": {"file_id": audio}}, {"body": {"file_url": "http://127.0.0.1:1/x"}}]
    job = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=requests)  # type: ignore[arg-type]
    wait_for(mistral, job.id, "SUCCESS")

    with server.client() as http:
        records = http.get("/v1/usage").json()["records"]
    transcriptions = sorted(r["status"] for r in records if r["endpoint"] == "transcription")
    assert transcriptions[0] == 200 and transcriptions[1] >= 400 and len(transcriptions) == 2
    assert any(r["audio_seconds"] == pytest.approx(1.5) for r in records)


@POSTGRES
def test_requests_from_a_jsonl_input_file(server: LiveServer) -> None:
    mistral = client(server)
    audio = upload(mistral, "a.wav", tone_wav(1.0))
    jsonl = "".join(
        json.dumps({"custom_id": str(i), "body": {"file_id": audio}}) + "\n" for i in range(3)
    )
    batch_file = upload(mistral, "in.jsonl", jsonl.encode(), purpose="batch")

    job = mistral.batch.jobs.create(endpoint=ENDPOINT, input_files=[batch_file])
    done = wait_for(mistral, job.id, "SUCCESS")

    assert done.input_files == [batch_file] and done.succeeded_requests == 3
    assert [line["custom_id"] for line in lines(mistral, done.output_file)] == ["0", "1", "2"]  # type: ignore[arg-type]


BAD_JOBS = [
    ({"endpoint": "/v1/chat/completions", "requests": [{"body": {}}]}, "supported: /v1/audio"),
    ({"endpoint": ENDPOINT}, "Give the requests"),
    ({"endpoint": ENDPOINT, "requests": [{"body": {"language": "en"}}]}, "requests[0]"),
    ({"endpoint": ENDPOINT, "requests": [{"body": {"file_id": "f", "x": 1}}]}, "x: Extra"),
    ({"endpoint": ENDPOINT, "requests": [{"body": {"file": "a"}}]}, "upload it to /v1/files"),
    ({"endpoint": ENDPOINT, "requests": [{"body": {"file_id": "f"}}], "agent_id": "a"}, "agent"),
    ({"endpoint": ENDPOINT, "input_files": ["file-missing"]}, "not found"),
]


@POSTGRES
def test_bad_jobs_are_refused_and_nothing_is_stored(server: LiveServer) -> None:
    mistral = client(server)
    for kwargs, message in BAD_JOBS:
        with pytest.raises(SDKError) as refused:
            mistral.batch.jobs.create(**kwargs)  # type: ignore[arg-type]
        assert refused.value.status_code in (400, 404), kwargs
        body = json.loads(refused.value.body)
        assert body["object"] == "error" and message in body["message"], body
    assert mistral.batch.jobs.list().total == 0


@POSTGRES
def test_input_files_need_the_batch_purpose_and_json_lines(server: LiveServer) -> None:
    mistral = client(server)
    audio = upload(mistral, "a.wav", tone_wav(1.0))
    not_jsonl = upload(mistral, "in.jsonl", b'{"custom_id": "0"}\nnot json\n', purpose="batch")
    for file_id, message in ((audio, "purpose 'batch'"), (not_jsonl, "line 1")):
        with pytest.raises(SDKError) as refused:
            mistral.batch.jobs.create(endpoint=ENDPOINT, input_files=[file_id])
        assert refused.value.status_code == 400
        assert message in json.loads(refused.value.body)["message"]


@POSTGRES
async def test_another_owners_job_is_not_found(pg_settings: Settings) -> None:
    alice_key, bob_key = await make_keys(pg_settings, "alice", "bob")
    with run_server(pg_settings, [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]) as live:
        alice, bob = client(live, alice_key), client(live, bob_key)
        audio = upload(alice, "a.wav", tone_wav(1.0))
        job = alice.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": {"file_id": audio}}])
        for call in (bob.batch.jobs.get, bob.batch.jobs.cancel, bob.batch.jobs.delete):
            with pytest.raises(SDKError) as hidden:
                call(job_id=job.id)
            assert hidden.value.status_code == 404
        assert bob.batch.jobs.list().total == 0
        assert alice.batch.jobs.list().total == 1
        # Bob's request naming Alice's file fails in his job, like his own transcription would.
        theirs = bob.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": {"file_id": audio}}])
        assert wait_for(bob, theirs.id, "FAILED").failed_requests == 1


@POSTGRES
def test_cancelling_a_running_job_stops_it_between_or_during_requests(
    pg_settings: Settings,
) -> None:
    with run_server(pg_settings, [FakeTTSEngine(), SlowFakeSTTEngine(0.4)]) as live:
        mistral = client(live)
        audio = upload(mistral, "a.wav", tone_wav(1.0))
        requests = [{"custom_id": str(i), "body": {"file_id": audio}} for i in range(20)]
        job = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=requests)  # type: ignore[arg-type]
        deadline = time.monotonic() + 20
        while mistral.batch.jobs.get(job_id=job.id).completed_requests < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        asked = mistral.batch.jobs.cancel(job_id=job.id)
        assert asked.status in ("CANCELLATION_REQUESTED", "CANCELLED")
        done = wait_for(mistral, job.id, "CANCELLED", timeout=10)

        assert 1 <= done.completed_requests < 20
        assert done.completed_at is not None
        written = lines(mistral, done.output_file)  # type: ignore[arg-type]
        assert [line["custom_id"] for line in written] == [
            str(i) for i in range(done.succeeded_requests)
        ]


@POSTGRES
def test_a_queued_job_outlives_the_server_and_is_cancelled_at_once(
    pg_settings: Settings,
) -> None:
    queue_only = pg_settings.model_copy(
        update={"batch": pg_settings.batch.model_copy(update={"run_in_serve": False})}
    )
    engines = [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]
    with run_server(queue_only, engines) as live:
        mistral = client(live)
        audio = upload(mistral, "a.wav", tone_wav(1.0))
        body = {"file_id": audio}
        kept = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": body}])
        dropped = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": body}])
        lost = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": body}])
        time.sleep(0.5)
        assert mistral.batch.jobs.get(job_id=kept.id).status == "QUEUED"  # no worker here
        assert mistral.batch.jobs.cancel(job_id=dropped.id).status == "CANCELLED"
        with pytest.raises(SDKError) as not_ended:
            mistral.batch.jobs.delete(job_id=kept.id)
        assert not_ended.value.status_code == 409
        assert "only an ended job can be deleted" in json.loads(not_ended.value.body)["message"]
    asyncio.run(forget_queueing(pg_settings, lost.id))

    with run_server(pg_settings, engines) as live:  # a new server, with a worker
        mistral = client(live)
        assert wait_for(mistral, kept.id, "SUCCESS").succeeded_requests == 1
        assert wait_for(mistral, lost.id, "SUCCESS").succeeded_requests == 1  # queued again
        assert mistral.batch.jobs.get(job_id=dropped.id).status == "CANCELLED"
        listed = mistral.batch.jobs.list(status=["SUCCESS"], order_by="created")
        assert [j.id for j in listed.data or []] == [kept.id, lost.id]
        deleted = mistral.batch.jobs.delete(job_id=dropped.id)
        assert (deleted.id, deleted.object, deleted.deleted) == (dropped.id, "batch", True)
        for call in (mistral.batch.jobs.get, mistral.batch.jobs.delete):
            with pytest.raises(SDKError) as gone:
                call(job_id=dropped.id)
            assert gone.value.status_code == 404
        assert mistral.batch.jobs.list().total == 2


@POSTGRES
def test_list_honours_every_filter_the_sdk_sends(server: LiveServer) -> None:
    mistral = client(server)
    audio = upload(mistral, "a.wav", tone_wav(0.5))
    made = []
    for run, model in (("1", "voxtral-mini-latest"), ("2", None), ("2", "voxtral-mini-latest")):
        job = mistral.batch.jobs.create(
            endpoint=ENDPOINT,
            model=model,
            requests=[{"body": {"file_id": audio}}],
            metadata={"run": run, "team": "a b"},
        )
        made.append(wait_for(mistral, job.id, "SUCCESS").id)
        if len(made) == 1:
            after = datetime.now(UTC)  # the server shares this clock

    def ids(**filters: object) -> list[str]:
        return [j.id for j in mistral.batch.jobs.list(**filters).data or []]  # type: ignore[arg-type]

    assert ids() == made[::-1] and ids(order_by="created") == made
    assert ids(metadata={"run": "2"}, order_by="created") == made[1:]
    assert ids(metadata={"run": "2", "team": "a b"}, model="voxtral-mini-latest") == [made[2]]
    assert ids(metadata={"run": "3"}) == []
    assert ids(status=["SUCCESS", "FAILED"], page=1, page_size=2) == [made[0]]
    assert ids(status=["QUEUED"]) == []
    assert ids(created_after=after, order_by="created") == made[1:]
    assert ids(created_by_me=True) == ids(created_by_me=False) == made[::-1]
    assert ids(agent_id="agent-1") == []  # agents are not served: no job has one
    assert mistral.batch.jobs.list(page_size=1).total == 3
    with server.client() as http:
        as_json = http.get("/v1/batch/jobs", params={"metadata": '{"run": "1"}'}).json()
        bad = [
            http.get("/v1/batch/jobs", params={"metadata": "run=1"}),
            http.get("/v1/batch/jobs?run=1&run=2"),
            http.get("/v1/batch/jobs", params={"status": "DONE"}),
        ]
    assert [j["id"] for j in as_json["data"]] == [made[0]]
    assert [r.status_code for r in bad] == [400, 400, 422]
    assert "JSON object" in bad[0].json()["message"] and "twice" in bad[1].json()["message"]


async def forget_queueing(settings: Settings, job_id: str) -> None:
    """Leave the job as a server that died between storing and queueing it would: stored,
    QUEUED, and in no queue."""
    connection = await asyncpg.connect(str(settings.database_url).replace("+asyncpg", ""))
    try:
        await connection.execute("DELETE FROM procrastinate_jobs WHERE lock = $1", job_id)
        await connection.execute("UPDATE batch_jobs SET queue_job_id = NULL WHERE id = $1", job_id)
    finally:
        await connection.close()


def test_on_sqlite_batch_routes_answer_400(live_server: LiveServer) -> None:
    mistral = Mistral(server_url=live_server.url)
    calls = (
        lambda: mistral.batch.jobs.list(),
        lambda: mistral.batch.jobs.get(job_id="batch-x"),
        lambda: mistral.batch.jobs.cancel(job_id="batch-x"),
        lambda: mistral.batch.jobs.delete(job_id="batch-x"),
        lambda: mistral.batch.jobs.create(endpoint=ENDPOINT, requests=[{"body": {}}]),
    )
    for call in calls:
        with pytest.raises(SDKError) as refused:
            call()
        assert refused.value.status_code == 400
        body = json.loads(refused.value.body)
        assert body["object"] == "error"
        assert "Batch jobs need PostgreSQL (VOXSERVE_DATABASE_URL=postgresql://" in body["message"]


@POSTGRES
def test_a_running_job_goes_back_to_the_queue_when_the_server_stops(
    pg_settings: Settings,
) -> None:
    quick_stop = pg_settings.model_copy(
        update={"batch": pg_settings.batch.model_copy(update={"shutdown_grace_seconds": 0})}
    )
    with run_server(quick_stop, [FakeTTSEngine(), SlowFakeSTTEngine(0.3)]) as live:
        mistral = client(live)
        audio = upload(mistral, "a.wav", tone_wav(1.0))
        requests = [{"custom_id": str(i), "body": {"file_id": audio}} for i in range(6)]
        job = mistral.batch.jobs.create(endpoint=ENDPOINT, requests=requests)  # type: ignore[arg-type]
        wait_for(mistral, job.id, "RUNNING")
        time.sleep(0.5)

    with run_server(pg_settings, [FakeTTSEngine(), SlowFakeSTTEngine(0.05)]) as live:
        mistral = client(live)
        done = wait_for(mistral, job.id, "SUCCESS")
        written = lines(mistral, done.output_file)  # type: ignore[arg-type]
    assert (done.completed_requests, done.succeeded_requests) == (6, 6)
    assert [line["custom_id"] for line in written] == [str(i) for i in range(6)]


@POSTGRES
async def test_a_job_past_its_timeout_ends_timeout_exceeded(pg_settings: Settings) -> None:
    queue_only = pg_settings.model_copy(
        update={"batch": pg_settings.batch.model_copy(update={"run_in_serve": False})}
    )
    engines = [FakeTTSEngine(), FakeSTTEngine(TRANSCRIPT)]
    with run_server(queue_only, engines) as live:
        mistral = client(live)
        audio = upload(mistral, "a.wav", tone_wav(1.0))
        body = {"file_id": audio}
        job = mistral.batch.jobs.create(
            endpoint=ENDPOINT, requests=[{"body": body}], timeout_hours=1
        )
    connection = await asyncpg.connect(str(pg_settings.database_url).replace("+asyncpg", ""))
    try:  # as if the job had waited two hours for a worker
        await connection.execute(
            "UPDATE batch_jobs SET created_at = created_at - interval '2 hours' WHERE id = $1",
            job.id,
        )
    finally:
        await connection.close()

    with run_server(pg_settings, engines) as live:
        done = wait_for(client(live), job.id, "TIMEOUT_EXCEEDED")
    assert done.completed_requests == 0 and done.completed_at is not None


def test_the_worker_command_refuses_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VOXSERVE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "Batch jobs need PostgreSQL" in result.output
