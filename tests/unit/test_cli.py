"""The CLI with the built-in engines (espeak, pocketsphinx): no models, no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import speech_data
from tests.support.decode import decode_bytes
from voxserve.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_create_list_revoke() -> None:
    out = invoke("keys", "create", "--name", "alice", "--credits", "100")
    key = out.strip().splitlines()[-1]
    assert key.startswith("vx-") and " " not in key
    listing = invoke("keys", "list")
    assert "alice" in listing and key not in listing and "active" in listing
    key_id = listing.split()[0]
    invoke("keys", "revoke", key_id)
    assert "revoked" in invoke("keys", "list")
    failed = runner.invoke(app, ["keys", "revoke", "no-such-key"])
    assert failed.exit_code == 1 and "not found" in failed.output


def test_voices_list_shows_builtin_presets() -> None:
    out = invoke("voices", "list", "--type", "preset")
    assert "espeak:en-us" in out


def test_say_writes_audio(tmp_path: Path) -> None:
    out = tmp_path / "hello.mp3"
    invoke("say", "Hello world.", "-o", str(out), "--voice", "espeak:en-us")
    samples, rate = decode_bytes(out.read_bytes())
    assert 0.5 < len(samples) / rate < 3


def test_transcribe_builtin_engine() -> None:
    jfk = speech_data.clip("faster_whisper_tests/jfk.flac")
    text = invoke("transcribe", str(jfk.path), "--format", "text", "--model", "pocketsphinx")
    assert "country" in text.lower()
    srt = invoke("transcribe", str(jfk.path), "--format", "srt", "--model", "pocketsphinx")
    assert "00:00:0" in srt and "-->" in srt


def test_say_refuses_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["say", "Hi.", "-o", str(tmp_path / "x.xyz")])
    assert result.exit_code == 2


def test_models_list_shows_catalogue() -> None:
    out = invoke("models", "list")
    assert "faster-whisper-base" in out and "piper-en_US-joe-medium" in out
