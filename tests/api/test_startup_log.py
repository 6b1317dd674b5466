"""Startup says which engines serve which voices, which is the default, and what to install."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.live_server import run_server
from voxserve.bootstrap import ensure_safe_to_serve, open_services
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


def startup_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "voxserve.bootstrap"]


def test_docs_url_and_keyless_mode_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voxserve.bootstrap")
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)
    with run_server(settings, [FakeTTSEngine()]) as server:
        pass
    lines = startup_lines(caplog)
    assert f"API docs: {server.url}/docs" in lines
    assert any(line.startswith("keyless: no API key exists") for line in lines)


async def test_a_server_with_keys_says_they_are_required(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=8123, public_url="https://v.x/")
    async with open_services(settings, engines=[FakeTTSEngine()]) as services:
        await services.auth.create_key("ops")
        caplog.set_level(logging.INFO, logger="voxserve.bootstrap")
        await ensure_safe_to_serve(services)
    lines = startup_lines(caplog)
    assert "API docs: https://v.x/docs" in lines
    assert any(line.startswith("API keys required") for line in lines)
