"""Uploads are decoded from the spooled file, never held whole in memory (#14 item 8): the peak
memory of a transcription upload does not grow with the upload's size."""

from __future__ import annotations

import tracemalloc
import wave
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
