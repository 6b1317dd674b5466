"""Graceful shutdown of a real ``voxserve serve`` process (built-in engines: espeak-ng speech,
pocketsphinx transcription): on SIGTERM ``/ready`` answers 503 first, then new connections are
refused, a streaming speech already in flight still completes, an open realtime socket is
closed with 1012, and the process exits. In process (a fake engine): a request still running
at the deadline is cut off, and the signal handling itself."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.live_server import free_port
from voxserve.api.app import create_app
from voxserve.api.health import Draining
from voxserve.api.server import GracefulServer, graceful_server
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage
from voxserve.storage.protocol import Storage, UsageRecord

LONG_TEXT = " ".join(f"This is sentence number {n} of a long answer." for n in range(40))
DRAIN_SECONDS = 3.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    env.update(
        VOXSERVE_DATA_DIR=str(tmp_path / "data"),
        VOXSERVE_MODELS_DIR=str(tmp_path / "models"),  # empty: the built-in engines
        VOXSERVE_SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        VOXSERVE_SHUTDOWN_SECONDS="30",
    )
    command = [sys.executable, "-m", "voxserve.cli.main", "serve", "--port", str(port)]
    log = tmp_path / "serve.log"  # a file, not a pipe nobody reads that could fill up
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(process, url, log)
            yield process, url
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("voxserve serve did not start")


def refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


@pytest.mark.slow
def test_sigterm_drains_finishes_streams_and_closes_sockets(
    server: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, url = server
    socket = connect(url.replace("http", "ws") + "/v1/realtime?intent=transcription")
    assert json.loads(socket.recv(timeout=30))["type"] == "session.created"
    body = {"input": LONG_TEXT, "voice_id": "en_paul_neutral", "response_format": "pcm"}
    speech_url = f"{url}/v1/audio/speech"
    with httpx.stream("POST", speech_url, json={**body, "stream": True}, timeout=60) as speech:
        assert speech.status_code == 200
        lines = speech.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        process.send_signal(signal.SIGTERM)
        ready = httpx.get(f"{url}/ready", timeout=5)  # still accepting while draining
        assert ready.status_code == 503 and ready.json()["status"] == "draining"
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=DRAIN_SECONDS + 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        deadline = time.monotonic() + 10
        while not refused(url):
            assert time.monotonic() < deadline, "still accepting connections"
            time.sleep(0.1)
        events, audio = [], [first]
        for line in lines:  # the stream in flight goes on to its end
            if line.startswith("event:"):
                events.append(line.removeprefix("event:").strip())
            elif line.startswith("data:"):
                audio.append(line)
    assert events[-1] == "speech.audio.done"
    samples = sum(
        len(base64.b64decode(json.loads(d.removeprefix("data:"))["audio_data"])) // 4
        for d in audio[:-1]
    )
    assert samples / 24000 > 40  # forty sentences of speech, not a cut-off stream
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)


def test_the_first_signal_drains_and_a_second_forces_the_exit() -> None:
    draining = Draining()
    server = GracefulServer(uvicorn.Config(FastAPI()), draining=draining, drain_seconds=0.2)
    server.handle_exit(signal.SIGTERM, None)
    assert draining.started and not server.should_exit  # /ready is false, still accepting
    deadline = time.monotonic() + 5
    while not server.should_exit:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not server.force_exit
    server.handle_exit(signal.SIGTERM, None)
    assert server.force_exit


def test_a_request_still_running_at_the_deadline_is_cut_off(settings: Settings) -> None:
    slow = FakeTTSEngine(delay=0.3)  # a fake: 0.3 s per word, so the text takes ~12 s
    settings = settings.model_copy(update={"port": free_port(), "shutdown_seconds": 1.0})
    storage = create_memory_storage()
    app = create_app(settings, engines=[slow], storage=storage)
    server = graceful_server(app, settings, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    wait_until_up(thread, url)
    body = {"input": "word " * 40, "voice_id": "fake-tts:alice", "stream": True}
    events = []
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=30) as speech:
        lines = speech.iter_lines()
        events.append(next(line for line in lines if line.startswith("event:")))
        server.handle_exit(signal.SIGTERM, None)
        stopped = time.monotonic()
        with contextlib.suppress(httpx.HTTPError):  # the server drops the cut-off stream
            events += [line for line in lines if line.startswith("event:")]
    thread.join(timeout=15)
    assert not thread.is_alive() and time.monotonic() - stopped < 8
    assert "event: speech.audio.done" not in events  # cut off, not finished
    (record,) = asyncio.run(speech_records(storage))
    assert record.status == 499  # recorded as a request cut off (before the storage closed)
    assert record.credits < 40 * len("word ")  # charged only for what went out


async def speech_records(storage: Storage) -> list[UsageRecord]:
    (owner,) = await storage.keys.list_owners()
    return [r for r in await storage.usage.records(owner.id) if r.endpoint == "speech"]


def wait_until_up(thread: threading.Thread, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert thread.is_alive()
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")
