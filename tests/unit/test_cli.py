"""The CLI with the built-in engines (espeak, pocketsphinx): no models, no server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import speech_data
from tests.support.decode import decode_bytes
from tests.support.models import models_dir
from tests.support.wer import wer
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


ROUND_TRIP_TEXT = "One two three four five."
"""Words the built-in PocketSphinx model hears well from eSpeak's US English voice."""


def voxserve(*args: str) -> str:
    """Run ``voxserve`` as a user does, in a fresh process (the engines start cold)."""
    command = [sys.executable, "-m", "voxserve.cli.main", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_say_then_transcribe_gives_the_words_back_with_the_builtin_engines(
    tmp_path: Path,
) -> None:
    # The README's no-server demo, with no --voice and no --model: espeak then pocketsphinx.
    audio = tmp_path / "hello.mp3"
    voxserve("say", ROUND_TRIP_TEXT, "-o", str(audio))
    heard = voxserve("transcribe", str(audio))
    assert wer([ROUND_TRIP_TEXT], [heard]) <= 0.5, heard


@pytest.mark.model
def test_say_then_transcribe_gives_the_words_back_with_real_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(models_dir()))
    text = "The quick brown fox jumps over the lazy dog."
    audio = tmp_path / "fox.wav"
    invoke("say", text, "-o", str(audio))
    heard = invoke("transcribe", str(audio))
    assert wer([text], [heard]) <= 0.5, heard


def test_admin_keys_owners_by_name_and_credits_add() -> None:
    out = invoke("keys", "create", "--name", "root", "--admin")
    assert "admin key id" in out
    invoke("owners", "create", "bob", "--credits", "10")
    assert "bob" in invoke("owners", "list")
    assert "110 credits" in invoke("credits", "add", "bob", "100")
    key_out = invoke("keys", "create", "--name", "bob laptop", "--owner", "bob")
    assert "(bob)" in key_out
    assert "balance 110 credits" in invoke("usage", "--owner", "bob")
    owner_id = invoke("owners", "list").split("bob")[0].split()[-1]
    assert "100 credits" in invoke("credits", "add", owner_id, "--", "-10")
    failed = runner.invoke(app, ["credits", "add", "nobody", "5"])
    assert failed.exit_code == 1 and "not found" in failed.output
