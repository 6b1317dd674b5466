"""The registry follows the models folder: ``tree_signature`` and ``ModelsFolder.refresh``.

Discovery reads configs only, so a voice here is the real test voice's ``.onnx.json`` next to a
stand-in ``.onnx`` (nothing is loaded); the live-server test speaks with the real one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.models import models_root
from voxserve.engines.espeak import EspeakEngine
from voxserve.engines.manager import EngineManager
from voxserve.engines.piper import PiperEngine
from voxserve.engines.registry import ModelsFolder, discover_engines, tree_signature
from voxserve.settings import EngineSettings, Settings

VOICE = "en_US-joe-medium"


@pytest.fixture
def voice_config() -> Path:
    path = models_root() / "piper" / f"{VOICE}.onnx.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing (set VOXSERVE_TEST_MODELS)")
    return path


def add_voice(models: Path, config: Path, name: str = VOICE) -> None:
    folder = models / "piper"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, folder / f"{name}.onnx.json")
    (folder / f"{name}.onnx").write_bytes(b"stand-in weights")


def add_whisper(models: Path, size: str = "tiny") -> None:
    folder = models / f"faster-whisper-{size}"
    folder.mkdir(parents=True)
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / name).write_text("{}")


def test_tree_signature_sees_files_added_grown_and_removed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"1")
    first = tree_signature(tmp_path)
    assert [entry[:2] for entry in first] == [("a/f", 1)]
    (tmp_path / "a" / "f.part").write_bytes(b"in progress")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "g").write_bytes(b"x")
    assert tree_signature(tmp_path) == first  # downloads in progress and hidden files: no change
    (tmp_path / "a" / "f").write_bytes(b"12")
    assert tree_signature(tmp_path) != first
    (tmp_path / "a" / "f").unlink()
    assert tree_signature(tmp_path) == ()


def test_tree_signature_follows_links(tmp_path: Path) -> None:
    elsewhere = tmp_path / "cache"
    elsewhere.mkdir()
    (elsewhere / "model.bin").write_bytes(b"abc")
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(elsewhere, models / "faster-whisper-tiny")
    assert [entry[:2] for entry in tree_signature(models)] == [("faster-whisper-tiny/model.bin", 3)]


async def test_refresh_adds_keeps_replaces_and_removes(tmp_path: Path, voice_config: Path) -> None:
    models = tmp_path / "models"
    settings = Settings(data_dir=tmp_path, models_dir=models)
    found = discover_engines(settings)
    manager = EngineManager(found, EngineSettings())
    folder = ModelsFolder(manager, settings, found)
    assert "piper" not in [h.name for h in manager.tts_handles()]

    add_voice(models, voice_config)
    changes = await folder.refresh()
    assert changes.added == ("piper",)
    assert [h.name for h in manager.tts_handles()] == ["piper", "espeak"]  # neural before built-in
    piper = manager.tts("piper")
    assert isinstance(piper, PiperEngine)

    assert not await folder.refresh()  # nothing changed: nothing rediscovered
    add_whisper(models)
    changes = await folder.refresh()
    assert changes.added == ("faster-whisper-tiny",)
    assert manager.tts("piper") is piper  # its files did not change: the same engine
    assert manager.stt_handles()[0].name == "faster-whisper-tiny"

    add_voice(models, voice_config, "en_US-joe2-medium")
    changes = await folder.refresh()
    assert (changes.added, changes.removed) == (("piper",), ("piper",))
    voices = [v.id for v in manager.tts_handle("piper").capabilities.voices]
    assert voices == [VOICE, "en_US-joe2-medium"]

    shutil.rmtree(models / "piper")
    changes = await folder.refresh()
    assert changes.removed == ("piper",)
    assert [h.name for h in manager.tts_handles()] == ["espeak"]
    assert isinstance(manager.tts("espeak"), EspeakEngine)


async def test_engines_not_from_the_folder_stay_put(tmp_path: Path, voice_config: Path) -> None:
    from voxserve.engines.fake import FakeTTSEngine

    remote_like = FakeTTSEngine()  # stands for a remote engine: first, and never rediscovered
    engines = [remote_like, EspeakEngine()]
    manager = EngineManager(engines, EngineSettings())
    folder = ModelsFolder(manager, Settings(data_dir=tmp_path, models_dir=tmp_path), engines)
    add_voice(tmp_path, voice_config)
    await folder.refresh()
    assert [h.name for h in manager.tts_handles()] == ["fake-tts", "piper", "espeak"]
    assert manager.tts("fake-tts") is remote_like


async def test_run_returns_at_once_when_rescanning_is_off(tmp_path: Path) -> None:
    manager = EngineManager([], EngineSettings())
    await ModelsFolder(manager, Settings(data_dir=tmp_path), []).run(0)


async def test_a_change_the_manager_could_not_apply_is_tried_again(
    tmp_path: Path, voice_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    settings = Settings(data_dir=tmp_path, models_dir=models)
    found = discover_engines(settings)
    manager = EngineManager(found, EngineSettings())
    folder = ModelsFolder(manager, settings, found)
    await folder.refresh()
    add_voice(models, voice_config)
    apply = manager.update_engines

    async def failing(engines: object) -> object:
        raise RuntimeError("manager busy")

    monkeypatch.setattr(manager, "update_engines", failing)
    with pytest.raises(RuntimeError):
        await folder.refresh()
    monkeypatch.setattr(manager, "update_engines", apply)
    changes = await folder.refresh()
    assert changes.added == ("piper",)
