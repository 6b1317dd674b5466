"""Uploads and fetched files are decoded from a spooled file, never held whole in memory (#14
item 8): the peak memory of a transcription upload, or of a ``file_url`` download, does not grow
with the file's size."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import run_server
from tests.support.memory import (
    MIB,
    RATE,
    bytes_written,
    file_server,
    long_wav,
    peak_while,
)
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings


def peak_of_upload(url: str, path: Path) -> tuple[int, dict[str, Any]]:
    """Peak traced memory (server and client share this process) while ``path`` is uploaded and
    transcribed; the client streams the file from disk."""

    def upload() -> httpx.Response:
        with path.open("rb") as audio, httpx.Client(base_url=url, timeout=300) as client:
            files = {"file": (path.name, audio, "audio/wav")}
            return client.post("/v1/audio/transcriptions", files=files, data={"model": "fake-stt"})

    peak, response = peak_while(upload)
    assert response.status_code == 200, response.text
    return peak, response.json()


def test_peak_memory_of_an_upload_does_not_grow_with_its_size(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"transcription_window_seconds": 30})}
    )
    small, large = long_wav(tmp_path / "small.wav", 4), long_wav(tmp_path / "large.wav", 32)
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine("One. Two.")]) as server:
        small_peak, _ = peak_of_upload(server.url, small)
        large_peak, answer = peak_of_upload(server.url, large)
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(32 * MIB / 2 / RATE, rel=0.01)
    # 8x the audio, about the same peak: one 30 s window (~2 MB of float32) and buffers (the
    # upload whole was 32 MiB more, before #14 item 8).
    assert large_peak < 20 * MIB, f"{large_peak / MIB:.0f} MiB for a 32 MiB upload"
    assert large_peak < small_peak + 8 * MIB, (small_peak / MIB, large_peak / MIB)


def peak_of_fetch(url: str, file_url: str) -> tuple[int, dict[str, Any]]:
    """Peak traced memory while the server fetches ``file_url`` and transcribes it."""

    def fetch() -> httpx.Response:
        with httpx.Client(base_url=url, timeout=300) as client:
            return client.post(
                "/v1/audio/transcriptions", data={"model": "fake-stt", "file_url": file_url}
            )

    peak, response = peak_while(fetch)
    assert response.status_code == 200, response.text
    return peak, response.json()


def test_peak_memory_of_a_fetched_file_does_not_grow_with_its_size(tmp_path: Path) -> None:
    """A ``file_url`` body is spooled to a temporary file and decoded from there."""
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    settings = settings.model_copy(
        update={
            "limits": settings.limits.model_copy(update={"transcription_window_seconds": 30}),
            "fetch": settings.fetch.model_copy(update={"allow_private_addresses": True}),
        }
    )
    long_wav(tmp_path / "small.wav", 2)
    long_wav(tmp_path / "large.wav", 20)
    engines = [FakeTTSEngine(), FakeSTTEngine("One. Two.")]
    with file_server(tmp_path) as files, run_server(settings, engines) as server:
        small_peak, _ = peak_of_fetch(server.url, f"{files}/small.wav")
        large_peak, answer = peak_of_fetch(server.url, f"{files}/large.wav")
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(20 * MIB / 2 / RATE, rel=0.01)
    # 10x the audio, about the same peak: a spooling buffer (1 MiB), one 30 s window, buffers
    # (the body whole in memory was 20 MiB, and as much again to copy it).
    assert large_peak < 16 * MIB, f"{large_peak / MIB:.0f} MiB for a 20 MiB download"
    assert large_peak < small_peak + 8 * MIB, (small_peak / MIB, large_peak / MIB)


def peak_of_file_upload(url: str, path: Path) -> tuple[int, dict[str, Any]]:
    """Peak traced memory while ``path`` is uploaded to ``/v1/files``."""

    def upload() -> httpx.Response:
        with path.open("rb") as body, httpx.Client(base_url=url, timeout=300) as client:
            files = {"file": (path.name, body, "application/octet-stream")}
            return client.post("/v1/files", files=files, data={"purpose": "audio"})

    peak, response = peak_while(upload)
    assert response.status_code == 200, response.text
    return peak, response.json()


@pytest.mark.skipif(sys.platform != "linux", reason="counts writes in /proc/self/io")
def test_a_file_upload_is_written_once_and_its_peak_memory_does_not_grow(tmp_path: Path) -> None:
    """``/v1/files`` streams Starlette's spooled upload to the blob store (``put_stream``): the
    bytes are written to files twice (Starlette's spool, the blob), where they were written three
    times (a second spool, copied into the blob); socket sends are not counted."""
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(b"\x01" * 2 * MIB)
    large.write_bytes(b"\x02" * 24 * MIB)
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine("One.")]) as server:
        small_peak, _ = peak_of_file_upload(server.url, small)
        before = bytes_written()
        large_peak, stored = peak_of_file_upload(server.url, large)
        written = bytes_written() - before
        with httpx.Client(base_url=server.url, timeout=60) as client:
            content = client.get(f"/v1/files/{stored['id']}/content").content
    assert stored["bytes"] == 24 * MIB
    assert content == large.read_bytes()
    assert written < 2.5 * 24 * MIB, f"{written / MIB:.0f} MiB written for a 24 MiB upload"
    # 12x the bytes, about the same peak (the body whole was 24 MiB, and more to copy it).
    assert large_peak < 16 * MIB, f"{large_peak / MIB:.0f} MiB for a 24 MiB upload"
    assert large_peak < small_peak + 8 * MIB, (small_peak / MIB, large_peak / MIB)
