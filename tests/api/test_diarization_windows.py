"""Diarized transcription of audio longer than one transcription window: the diarizer hears the
upload whole while the engine reads it window by window (fake engines, 30 s windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mistralai.client import Mistral

from tests.support.audio_samples import pcm16_wav
from tests.support.fake_diarizer import FakeDiarizer
from tests.support.live_server import LiveServer
from voxserve.engines.fake import FakeSTTEngine
from voxserve.settings import Settings

RATE = 16000


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        host="127.0.0.1",
        port=0,
        limits={"transcription_window_seconds": 30},  # type: ignore[arg-type]
    )


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeSTTEngine("one two. three four."), FakeDiarizer()]


def test_every_window_is_labelled(live_server: LiveServer) -> None:
    t = np.arange(20 * RATE) / RATE
    audio = pcm16_wav(
        0.3 * np.concatenate([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 440 * t)]), RATE
    )
    result = Mistral(server_url=live_server.url).audio.transcriptions.complete(
        model="voxtral-mini-latest", file={"file_name": "long.wav", "content": audio}, diarize=True
    )
    assert [(s.text, s.speaker_id) for s in result.segments] == [
        ("one two.", "speaker_1"),
        ("three", "speaker_1"),
        ("four.", "speaker_2"),
        ("one two.", "speaker_2"),
        ("three four.", "speaker_2"),
    ]
    assert result.segments[-1].end == pytest.approx(40.0)
