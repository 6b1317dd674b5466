"""Engine discovery from settings and the models folder."""

from __future__ import annotations

from pathlib import Path

from voxserve.engines.registry import discover_engines
from voxserve.settings import Settings


def names(settings: Settings) -> list[str]:
    return [engine.name for engine in discover_engines(settings)]


def test_builtin_engines_without_models(tmp_path: Path) -> None:
    assert names(Settings(data_dir=tmp_path)) == ["espeak", "pocketsphinx"]


def test_remote_engines_come_first_with_their_settings(tmp_path: Path) -> None:
    remote = {
        "tts_url": "http://gpu:8000/v1",
        "tts_voices": ["casual_male"],
        "tts_cloning": True,
        "stt_url": "http://gpu:8001/v1",
        "chat_url": "http://gpu:8002/v1",
        "chat_audio_native": True,
        "chat_context_length": 8192,
    }
    engines = discover_engines(Settings(data_dir=tmp_path, remote=remote))  # type: ignore[arg-type]
    assert [e.name for e in engines] == [
        "remote-tts",
        "espeak",
        "remote-stt",
        "pocketsphinx",
        "remote-chat",
    ]
    tts = engines[0].capabilities()
    assert tts.cloning and [v.id for v in tts.voices] == ["casual_male"]  # type: ignore[union-attr]
    chat = engines[-1].capabilities()
    assert chat.audio_input and chat.context_length == 8192  # type: ignore[union-attr]
