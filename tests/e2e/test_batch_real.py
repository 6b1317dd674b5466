"""A batch job of three real clips, one of them an hour long, transcribed by faster-whisper
tiny.en in a separate ``voxserve worker`` process that is killed (``kill -9``) in the middle of
the job and started again: the job still ends SUCCESS with every transcript right (WER against
the manifest's reference text), driven through the mistralai SDK against a server on PostgreSQL.

The hour is synthesised here from shared clips: three utterances far apart in digital silence
(so VAD keeps it fast), each checked at its own time in the transcript."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import AsyncIterator, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from mistralai.client import Mistral
from mistralai.client.models import BatchJob

import voxserve
from tests.storage.conftest import postgres_server_url  # noqa: F401 (a fixture)
from tests.support import speech_data
from tests.support.live_server import run_server
from tests.support.models import models_dir
from tests.support.postgres import create_database, drop_database
from tests.support.wer import wer
from voxserve.settings import Settings

pytestmark = [pytest.mark.model, pytest.mark.postgres, pytest.mark.slow]
RATE = 16000
HOUR = 3600.0
UTTERANCES = (  # (clip, where it starts in the hour); far from the 600 s window edges
    ("ljspeech/LJ001-0001.flac", 20.0),
    ("ljspeech/LJ001-0005.flac", 1500.0),
    ("ljspeech/LJ001-0010.flac", 3300.0),
)
BY_ID = "faster_whisper_tests/jfk.flac"
BY_URL = "picovoice_leopard/test.wav"
STT = "faster-whisper-tiny.en"


def hour_wav() -> bytes:
    """An hour of silence with the utterances in it, as 16-bit 16 kHz WAV."""
    pcm = np.zeros(int(HOUR * RATE), dtype="<i2")
    for file, start in UTTERANCES:
        samples = speech_data.decode(speech_data.clip(file).path, RATE).samples
        at = int(start * RATE)
        pcm[at : at + len(samples)] = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


@pytest.fixture
async def settings(
    postgres_server_url: str,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> AsyncIterator[Settings]:
    url = await create_database(postgres_server_url)
    yield Settings(
        data_dir=tmp_path / "data",
        models_dir=models_dir(),
        database_url=url,
        engines={"default_stt": STT},  # type: ignore[arg-type]
        batch={"run_in_serve": False},  # type: ignore[arg-type]
    )
    await drop_database(postgres_server_url, url)


@pytest.fixture
def clip_url() -> Iterator[str]:
    """The shared data folder served over HTTP on loopback (for ``file_url``)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(speech_data.data_dir()))
    handler.log_message = lambda *_: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/{BY_URL}"
    server.shutdown()


class Workers:
    """``voxserve worker`` processes started by this test (and stopped by it)."""

    def __init__(self, settings: Settings) -> None:
        self.env = {
            **os.environ,
            "PYTHONPATH": str(Path(voxserve.__file__).parents[1]),
            "VOXSERVE_DATA_DIR": str(settings.data_dir),
            "VOXSERVE_MODELS_DIR": str(settings.models_dir),
            "VOXSERVE_DATABASE_URL": str(settings.database_url),
            "VOXSERVE_ENGINES__DEFAULT_STT": STT,
            "VOXSERVE_FETCH__ALLOW_PRIVATE_ADDRESSES": "true",
            "VOXSERVE_BATCH__HEARTBEAT_SECONDS": "0.5",
            "VOXSERVE_BATCH__STALLED_AFTER_SECONDS": "2",
            "VOXSERVE_LOG_LEVEL": "WARNING",
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", "from voxserve.cli.main import app; app()", "worker"]
        process = subprocess.Popen(command, env=self.env)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    started = Workers(settings)
    yield started
    started.stop_all()


def wait_for(mistral: Mistral, job_id: str, done: object, timeout: float) -> BatchJob:
    deadline = time.monotonic() + timeout
    while True:
        job = mistral.batch.jobs.get(job_id=job_id)
        if done(job) or job.status in ("FAILED", "CANCELLED", "TIMEOUT_EXCEEDED"):  # type: ignore[operator]
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_three_clips_one_an_hour_long_survive_a_killed_worker(
    settings: Settings, clip_url: str, workers: Workers
) -> None:
    with run_server(settings) as live:
        mistral = Mistral(server_url=live.url, timeout_ms=120_000)
        by_id = speech_data.clip(BY_ID)
        short = mistral.files.upload(
            file={"file_name": "jfk.flac", "content": by_id.path.read_bytes()}
        ).id
        hour = mistral.files.upload(file={"file_name": "hour.wav", "content": hour_wav()}).id
        requests = [
            {"custom_id": "jfk", "body": {"file_id": short, "language": "en"}},
            {"custom_id": "hour", "body": {"file_id": hour, "language": "en"}},
            {"custom_id": "url", "body": {"file_url": clip_url, "language": "en"}},
        ]
        job = mistral.batch.jobs.create(
            endpoint="/v1/audio/transcriptions", model="voxtral-mini-latest", requests=requests
        )

        first = workers.start()
        running = wait_for(mistral, job.id, lambda j: j.completed_requests >= 1, timeout=60)
        os.kill(first.pid, signal.SIGKILL)  # mid-job: the hour-long request has just started
        first.wait()
        assert running.status == "RUNNING" and running.completed_requests == 1
        workers.start()
        done = wait_for(mistral, job.id, lambda j: j.status == "SUCCESS", timeout=150)

        assert done.status == "SUCCESS", done
        assert (done.succeeded_requests, done.failed_requests) == (3, 0)
        output = mistral.files.download(file_id=done.output_file).read()  # type: ignore[arg-type]
    bodies = {
        line["custom_id"]: line["response"]["body"] for line in map(json.loads, output.splitlines())
    }
    assert wer([by_id.transcript], [bodies["jfk"]["text"]]) < 0.3
    assert wer([speech_data.clip(BY_URL).transcript], [bodies["url"]["text"]]) < 0.3
    check_hour(bodies["hour"])


def check_hour(body: dict[str, object]) -> None:
    """Every utterance is heard at its own time, in order, and nothing in the silence."""
    segments = body["segments"]
    assert isinstance(segments, list)
    used = 0
    for file, start in UTTERANCES:
        clip = speech_data.clip(file)
        near = [s for s in segments if start - 2 <= s["start"] <= start + clip.duration + 2]
        heard = " ".join(s["text"] for s in near)
        assert wer([clip.transcript], [heard]) < 0.35, (file, heard)
        used += len(near)
    assert used == len(segments), segments
    assert body["usage"]["prompt_audio_seconds"] == HOUR  # type: ignore[index]
