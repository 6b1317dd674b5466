"""Uploads and fetched files are decoded from a spooled file, never held whole in memory (#14
item 8): the peak memory of a transcription upload, or of a ``file_url`` download, does not grow
with the file's size."""

from __future__ import annotations

import functools
import threading
import tracemalloc
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.live_server import run_server
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

RATE = 16000
MIB = 1024 * 1024


def long_wav(path: Path, megabytes: int) -> Path:
    """A 16 kHz mono 16-bit WAV of about ``megabytes`` (a quiet tone), written in pieces."""
    second = (np.sin(np.arange(RATE) * 2 * np.pi * 220 / RATE) * 3000).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for _ in range(megabytes * MIB // len(second)):
            out.writeframes(second)
    return path


def peak_of_upload(url: str, path: Path) -> tuple[int, dict[str, object]]:
    """Peak traced memory (server and client share this process) while ``path`` is uploaded and
    transcribed; the client streams the file from disk."""
    tracemalloc.start()
    try:
        with path.open("rb") as audio, httpx.Client(base_url=url, timeout=300) as client:
            files = {"file": (path.name, audio, "audio/wav")}
            response = client.post(
                "/v1/audio/transcriptions", files=files, data={"model": "fake-stt"}
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    return peak, response.json()


def test_peak_memory_of_an_upload_does_not_grow_with_its_size(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    settings = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"transcription_window_seconds": 30})}
    )
    small, large = long_wav(tmp_path / "small.wav", 8), long_wav(tmp_path / "large.wav", 64)
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine("One. Two.")]) as server:
        small_peak, _ = peak_of_upload(server.url, small)
        large_peak, answer = peak_of_upload(server.url, large)
    assert answer["usage"]["prompt_audio_seconds"] == pytest.approx(64 * MIB / 2 / RATE, rel=0.01)
    # 8x the audio, about the same peak: one 30 s window (~2 MB of float32) and buffers.
    assert large_peak < 24 * MIB, f"{large_peak / MIB:.0f} MiB for a 64 MiB upload"
    assert large_peak < small_peak + 8 * MIB, (small_peak / MIB, large_peak / MIB)


@contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """Serves ``folder`` over HTTP on loopback (the standard library streams each file)."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def peak_of_fetch(url: str, file_url: str) -> tuple[int, dict[str, object]]:
    """Peak traced memory while the server fetches ``file_url`` and transcribes it."""
    tracemalloc.start()
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            response = client.post(
                "/v1/audio/transcriptions", data={"model": "fake-stt", "file_url": file_url}
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
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


def peak_of_file_upload(url: str, path: Path) -> tuple[int, dict[str, object]]:
    """Peak traced memory while ``path`` is uploaded to ``/v1/files``."""
    tracemalloc.start()
    try:
        with path.open("rb") as body, httpx.Client(base_url=url, timeout=300) as client:
            files = {"file": (path.name, body, "application/octet-stream")}
            response = client.post("/v1/files", files=files, data={"purpose": "audio"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    return peak, response.json()


def test_peak_memory_of_a_file_upload_does_not_grow_with_its_size(tmp_path: Path) -> None:
    """``/v1/files`` streams the spooled upload to the blob store (``BlobStore.put_file``)."""
    settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)
    small, large = tmp_path / "small.bin", tmp_path / "large.bin"
    small.write_bytes(b"\x01" * 2 * MIB)
    large.write_bytes(b"\x02" * 24 * MIB)
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine("One.")]) as server:
        small_peak, _ = peak_of_file_upload(server.url, small)
        large_peak, stored = peak_of_file_upload(server.url, large)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            content = client.get(f"/v1/files/{stored['id']}/content").content
    assert stored["bytes"] == 24 * MIB
    assert content == large.read_bytes()
    # 12x the bytes, about the same peak (the body whole was 24 MiB, and more to copy it).
    assert large_peak < 16 * MIB, f"{large_peak / MIB:.0f} MiB for a 24 MiB upload"
    assert large_peak < small_peak + 8 * MIB, (small_peak / MIB, large_peak / MIB)
