"""Every way audio reaches the server is decoded from a spooled file, never held whole in memory
(#14 item 8): a stored file by ``file_id`` or signed URL, a ``voice_url``, a chat audio URL. Each
test measures the peak (server and client share this process) for a small and a ~11x larger WAV:
the peak must not grow with the size (the old paths held the whole file, and copies of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer, run_server
from tests.support.memory import MIB, RATE, file_server, long_wav, peak_while, wav_seconds
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

SMALL, LARGE = 1.5, 16
"""Megabytes of the two WAVs (~11x apart: 49 and 524 s at 16 kHz)."""
GROWTH = 10 * MIB
"""How much more the larger file may cost: buffers and windows decoded ahead (-1 to 7 MiB on a
busy machine), never the file (the old paths grew by 13.6 to 17.7 MiB)."""


@dataclass(frozen=True)
class Setup:
    server: LiveServer
    files: str
    """The loopback file server's base URL (``/small.wav``, ``/large.wav``)."""
    uploaded: dict[str, str]
    """``small``/``large`` -> the file id of that WAV uploaded to ``/v1/files``."""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("source-memory")
    settings = Settings(data_dir=folder / "data", host="127.0.0.1", port=0)
    settings = settings.model_copy(
        update={
            "limits": settings.limits.model_copy(update={"transcription_window_seconds": 30}),
            "fetch": settings.fetch.model_copy(update={"allow_private_addresses": True}),
        }
    )
    wavs = {
        "small": long_wav(folder / "small.wav", SMALL),
        "large": long_wav(folder / "large.wav", LARGE),
    }
    engines = [FakeTTSEngine(), FakeSTTEngine("One. Two."), FakeChatEngine()]
    with file_server(folder) as files, run_server(settings, engines) as server:
        with server.client() as client:
            uploaded = {name: upload(client, path) for name, path in wavs.items()}
        yield Setup(server, files, uploaded)


def upload(client: httpx.Client, path: Path) -> str:
    with path.open("rb") as body:
        files = {"file": (path.name, body, "audio/wav")}
        response = client.post("/v1/files", files=files, data={"purpose": "audio"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def peaks(setup: Setup, send: Callable[[httpx.Client, str], httpx.Response]) -> list[Any]:
    """The peak of ``send(client, "small")`` then ``send(client, "large")``, with the answers."""
    found: list[Any] = []
    for name in ("small", "large"):
        with setup.server.client() as client:
            peak, response = peak_while(lambda: send(client, name))  # noqa: B023 (called now)
        assert response.status_code == 200, response.text
        found += [peak, response.json()]
    return found


def assert_flat(small_peak: int, large_peak: int) -> None:
    assert large_peak < small_peak + GROWTH, (small_peak / MIB, large_peak / MIB)


def transcribe(form: dict[str, str], client: httpx.Client) -> httpx.Response:
    return client.post("/v1/audio/transcriptions", data={"model": "fake-stt", **form}, timeout=300)


def test_peak_memory_of_a_file_id_transcription_does_not_grow_with_the_file(setup: Setup) -> None:
    small_peak, _, large_peak, answer = peaks(
        setup, lambda client, name: transcribe({"file_id": setup.uploaded[name]}, client)
    )
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(wav_seconds(LARGE), abs=1)
    assert_flat(small_peak, large_peak)


def test_peak_memory_of_a_signed_url_transcription_does_not_grow_with_the_file(
    setup: Setup,
) -> None:
    """A signed URL of this server is read from storage (spooled), never fetched."""
    with setup.server.client() as client:
        urls = {
            name: client.get(f"/v1/files/{file_id}/url").json()["url"]
            for name, file_id in setup.uploaded.items()
        }
    small_peak, _, large_peak, answer = peaks(
        setup, lambda client, name: transcribe({"file_url": urls[name]}, client)
    )
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(wav_seconds(LARGE), abs=1)
    assert_flat(small_peak, large_peak)


def test_peak_memory_of_a_voice_url_does_not_grow_with_the_file(setup: Setup) -> None:
    """The fetched sample stays in its spool; only its first ``sample_max_seconds`` are decoded."""

    def clone(client: httpx.Client, name: str) -> httpx.Response:
        form = {"voice_url": f"{setup.files}/{name}.wav", "display_name": name}
        return client.post("/voices", data=form, timeout=300)

    small_peak, _, large_peak, answer = peaks(setup, clone)
    assert answer["data"]["display_name"] == "large"
    assert answer["data"]["duration"] == pytest.approx(30, abs=0.5)  # the kept head
    assert_flat(small_peak, large_peak)


def test_peak_memory_of_a_chat_audio_url_does_not_grow_with_the_file(setup: Setup) -> None:
    """A chat engine that cannot hear gets a transcript of the URL's audio, decoded from its
    spool window by window."""

    def chat(client: httpx.Client, name: str) -> httpx.Response:
        audio = {"data": f"{setup.files}/{name}.wav", "format": "wav"}
        content = [{"type": "input_audio", "input_audio": audio}, {"type": "text", "text": "Hi."}]
        body = {"model": "fake-chat", "messages": [{"role": "user", "content": content}]}
        return client.post("/v1/chat/completions", json=body, timeout=300)

    small_peak, _, large_peak, answer = peaks(setup, chat)
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(wav_seconds(LARGE), abs=1)
    assert_flat(small_peak, large_peak)


def test_peak_memory_of_a_file_download_does_not_grow_with_the_file(setup: Setup) -> None:
    """``/v1/files/{id}/content`` streams the blob as it is read (the client reads in chunks)."""

    def download(client: httpx.Client, name: str) -> int:
        path = f"/v1/files/{setup.uploaded[name]}/content"
        with client.stream("GET", path, timeout=300) as response:
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == wav_bytes(name)
            return sum(len(chunk) for chunk in response.iter_bytes())

    measured = []
    for name in ("small", "large"):
        with setup.server.client() as client:
            peak, size = peak_while(lambda: download(client, name))  # noqa: B023 (called now)
        assert size == wav_bytes(name)
        measured.append(peak)
    assert_flat(*measured)


def wav_bytes(name: str) -> int:
    """The size of ``long_wav`` of that name: whole seconds of 16 kHz 16-bit, and the header."""
    return int(wav_seconds(SMALL if name == "small" else LARGE)) * RATE * 2 + 44
