"""Startup says which engines serve which voices, which is the default, and what to install."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.live_server import run_server
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings


def test_engines_voices_and_hints_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxserve.api.app")
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)
    with run_server(settings, [FakeTTSEngine(cloning=False), FakeSTTEngine()]):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "voxserve.api.app"]
    assert (
        "speech engine fake-tts (default: hosted model and voice names use it): 2 preset voices "
        "(fake-tts:alice, fake-tts:bob)"
    ) in lines
    assert "transcription engine fake-stt" in lines
    assert any(line.startswith("for voice cloning: scripts/install --pocket") for line in lines)
    assert any(line.startswith("for natural voices:") for line in lines)
    assert any(line.startswith("for chat:") for line in lines)
