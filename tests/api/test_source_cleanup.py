"""A fetched or stored file's spool is closed when its transcription ends (#14 item 8): after a
plain answer, after a streamed one, and after a client that hangs up mid-stream (also while the
server awaits the socket), no temporary file is left open. Garbage collection is off meanwhile,
so nothing is left for it to close."""

from __future__ import annotations

import asyncio
import base64
import gc
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import openai
import pytest
from starlette.types import ASGIApp, Message

from tests.support.live_server import LiveServer, run_server
from tests.support.memory import file_server, long_wav, open_temporary_files
from voxserve.api.app import create_app
from voxserve.audio.types import AudioClip
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.engines.protocol import Segment, TranscriptionInfo, TranscriptionOptions
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/fd")


class SlowFakeSTTEngine(FakeSTTEngine):
    """The fake transcriber, taking 0.1 s per window: a stream lasts long enough to hang up."""

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        time.sleep(0.1)
        return super().transcribe(audio, options)


@dataclass(frozen=True)
class Served:
    server: LiveServer
    url: str
    """A 3 MiB WAV on a loopback file server."""
    chat: FakeChatEngine


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("source-cleanup")
    long_wav(folder / "talk.wav", 3)  # ~98 s: past the in-memory spool size, 10 windows
    settings = Settings(data_dir=folder / "data", host="127.0.0.1", port=0)
    settings = settings.model_copy(
        update={
            "limits": settings.limits.model_copy(update={"transcription_window_seconds": 10}),
            "fetch": settings.fetch.model_copy(update={"allow_private_addresses": True}),
        }
    )
    chat = FakeChatEngine()
    engines = [FakeTTSEngine(), SlowFakeSTTEngine("One. Two."), chat]
    with file_server(folder) as files, run_server(settings, engines) as server:
        yield Served(server, f"{files}/talk.wav", chat)


@pytest.fixture(autouse=True)
def no_garbage_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def settled(baseline: int, timeout: float = 5.0) -> int:
    """The open temporary files once back at ``baseline`` (or after ``timeout``). At most
    ``baseline``: a spool of an earlier test's server that closes meanwhile counts as none
    left, not as one fewer than the baseline."""
    deadline = time.monotonic() + timeout
    while (count := open_temporary_files()) > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return max(count, baseline)


def form(url: str, **extra: str) -> dict[str, str]:
    return {"model": "fake-stt", "file_url": url, **extra}


@contextmanager
def streamed_transcription(served: Served) -> Iterator[httpx.Response]:
    """The streamed transcription of the served file, its 200 checked, its body not read yet."""
    with (
        served.server.client() as client,
        client.stream(
            "POST", "/v1/audio/transcriptions", data=form(served.url, stream="true"), timeout=60
        ) as response,
    ):
        assert response.status_code == 200
        yield response


def test_no_temporary_file_is_left_after_a_url_transcription(
    served: Served,
) -> None:
    server, url = served.server, served.url
    baseline = open_temporary_files()
    with server.client() as client:
        response = client.post("/v1/audio/transcriptions", data=form(url), timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["text"].startswith("One. Two.")
    assert settled(baseline) == baseline


def test_no_temporary_file_is_left_after_a_streamed_url_transcription(
    served: Served,
) -> None:
    baseline = open_temporary_files()
    with streamed_transcription(served) as response:
        events = [line for line in response.iter_lines() if line.startswith("data:")]
    assert len(events) > 10
    assert settled(baseline) == baseline


def test_no_temporary_file_is_left_after_a_client_hangs_up_mid_stream(
    served: Served,
) -> None:
    baseline = open_temporary_files()
    with streamed_transcription(served) as response:
        next(line for line in response.iter_lines() if line.startswith("data:"))
        # (Not asserted: that the spool is open now. A count cannot tell, since an earlier
        # test's spool may close meanwhile, and names cannot either: O_TMPFILE inodes recur.)
    assert settled(baseline) == baseline


async def test_no_temporary_file_is_left_after_a_hang_up_while_the_socket_is_full(
    served: Served, tmp_path: Path
) -> None:
    """The hang-up noticed while the server awaits the socket (its buffer full: the second body
    chunk's ``send`` waits), where Starlette's own response leaves the body suspended."""
    settings = served.server.settings.model_copy(update={"data_dir": tmp_path})
    engines = [FakeTTSEngine(), SlowFakeSTTEngine("One. Two."), FakeChatEngine()]
    app = create_app(settings, engines=engines, storage=create_memory_storage())
    baseline = open_temporary_files()
    async with app.router.lifespan_context(app):
        await hang_up_while_the_socket_is_full(app, form(served.url, stream="true"))
        assert open_temporary_files() <= baseline  # closed by the time the response ends


async def hang_up_while_the_socket_is_full(app: ASGIApp, fields: dict[str, str]) -> None:
    """POST ``fields`` to the transcription route as uvicorn would; the first body chunk goes
    out, the second one's ``send`` blocks, and then the client hangs up."""
    body = urlencode(fields).encode()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/audio/transcriptions",
        "raw_path": b"/v1/audio/transcriptions",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    requests = [{"type": "http.request", "body": body, "more_body": False}]
    chunks: list[bytes] = []
    full = asyncio.Event()

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await full.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            if chunks:
                full.set()
                await asyncio.Event().wait()  # until cancelled
            chunks.append(message["body"])

    await app(scope, receive, send)
    assert chunks and chunks[0].startswith(b"event: transcription.language")


def test_no_temporary_file_is_left_after_a_refused_url_transcription(served: Served) -> None:
    """A fetched body that is not audio: 400, and its spool closed at once."""
    server, url = served.server, served.url
    baseline = open_temporary_files()
    with server.client() as client:
        response = client.post(
            "/v1/audio/transcriptions", data=form(url.replace("talk.wav", "")), timeout=60
        )
    assert response.status_code == 400, response.text
    assert settled(baseline) == baseline


def test_large_base64_chat_audio_is_transcribed_from_a_spool_that_is_then_closed(
    served: Served, tmp_path: Path
) -> None:
    """Base64 over 1 MiB is decoded in pieces to a spool (the text itself is in the JSON body);
    the transcript reaches the chat engine and the spool is closed after the part."""
    server = served.server
    audio = base64.b64encode(long_wav(tmp_path / "question.wav", 1.5).read_bytes()).decode()
    assert len(audio) > 1024 * 1024
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    content: Any = [{"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}]
    baseline = open_temporary_files()
    answer = client.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": content}]
    )
    assert answer.usage is not None
    assert answer.usage.model_extra == {"prompt_audio_seconds": 49}
    transcript = served.chat.requests[-1].messages[0].content
    assert transcript.startswith('<audio_transcript index=1 language="en" duration="49.0s">')
    assert "[44.5-49.0] Two." in transcript
    assert settled(baseline) == baseline
