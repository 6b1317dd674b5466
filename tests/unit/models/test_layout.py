"""The models-folder layout: what ``scan`` recognises and what ``remove`` deletes (and never)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voxserve.errors import InvalidRequest, NotFound
from voxserve.models.layout import InstalledModel, find_installed, remove, scan

PIPER_CONFIG = b'{"audio": {"sample_rate": 22050}}'
"""The least a Piper voice config needs for the engine to take the voice."""
POCKET_CONFIG = b"weights_path: english/model.safetensors\n" + (
    b"flow_lm:\n  lookup_table:\n    tokenizer_path: english/tokenizer.json\n"
)
"""A Pocket TTS config naming local weights and tokenizer."""


def put(root: Path, relative: str, size: int = 10, data: bytes | None = None) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size if data is None else data)
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A models folder with one model of each kind, plus things that are not models."""
    root = tmp_path / "models"
    put(root, "piper/en_US-joe-medium.onnx", 1000)
    put(root, "piper/en_US-joe-medium.onnx.json", data=PIPER_CONFIG)
    put(root, "piper/de_DE-thorsten-medium.onnx", 500)
    put(root, "piper/de_DE-thorsten-medium.onnx.json", data=PIPER_CONFIG)
    put(root, "piper/fr_FR-siwis-medium.onnx", 7)  # no config: not a voice yet
    put(root, "piper/it_IT-riccardo-x_low.onnx", 7)
    put(root, "piper/it_IT-riccardo-x_low.onnx.json", 20)  # unreadable: the engine skips it
    for name, size in [("model.bin", 400), ("config.json", 3), ("tokenizer.json", 5)]:
        put(root, f"faster-whisper-base/{name}", size)
    put(root, "faster-whisper-base/vocabulary.txt", 2)
    put(root, "faster-whisper-small/config.json")  # no model.bin yet
    put(root, "faster-whisper-small/model.bin.part")
    put(root, "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", 300)
    put(root, "vision-only/mmproj-model-f16.gguf")  # a projector alone is no chat model
    put(root, "half-pulled/model.gguf.part")
    put(root, "pocket-tts/config.yaml", data=POCKET_CONFIG)
    put(root, "pocket-tts/english/model.safetensors", 600)
    put(root, "pocket-tts/english/tokenizer.json", 6)
    put(root, "notes/readme.txt")
    put(root, ".cache/thing.gguf")
    put(root, "stray.gguf")
    return root


def by_name(models_dir: Path) -> dict[str, InstalledModel]:
    return {model.name: model for model in scan(models_dir)}


def test_scan_recognises_each_kind_of_model_and_nothing_else(models: Path) -> None:
    found = by_name(models)

    assert sorted(found) == [
        "faster-whisper-base",
        "piper-de_DE-thorsten-medium",
        "piper-en_US-joe-medium",
        "pocket-tts",
        "smollm2-135m-instruct",
    ]
    kinds = {name: (m.kind, m.engine) for name, m in found.items()}
    assert kinds["faster-whisper-base"] == ("stt", "faster-whisper")
    assert kinds["piper-en_US-joe-medium"] == ("tts", "piper")
    assert kinds["pocket-tts"] == ("tts", "pocket-tts")
    assert kinds["smollm2-135m-instruct"] == ("chat", "llama-cpp")


def test_scan_reports_paths_files_and_sizes(models: Path) -> None:
    found = by_name(models)

    joe = found["piper-en_US-joe-medium"]
    assert joe.path == models / "piper/en_US-joe-medium.onnx"
    assert joe.files == (joe.path, models / "piper/en_US-joe-medium.onnx.json")
    assert joe.size_bytes == 1000 + len(PIPER_CONFIG)
    whisper = found["faster-whisper-base"]
    assert whisper.path == models / "faster-whisper-base"
    assert [f.name for f in whisper.files] == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.txt",
    ]
    assert whisper.size_bytes == 410
    assert found["pocket-tts"].size_bytes == 606 + len(POCKET_CONFIG)


def test_pocket_tts_counts_only_with_the_config_and_every_file_it_names(tmp_path: Path) -> None:
    # The engine loads pocket-tts/config.yaml: weights without it are not a model (nor are a
    # config whose weights are missing, or one naming files on the hub).
    root = tmp_path / "models"
    put(root, "pocket-tts/english/model.safetensors", 600)
    put(root, "pocket-tts/english/tokenizer.json", 6)
    assert "pocket-tts" not in by_name(root)

    put(root, "pocket-tts/config.yaml", data=POCKET_CONFIG)
    assert "pocket-tts" in by_name(root)

    (root / "pocket-tts/english/model.safetensors").unlink()
    assert "pocket-tts" not in by_name(root)

    put(root, "pocket-tts/config.yaml", data=b"weights_path: hf://kyutai/pocket-tts/model.st\n")
    assert "pocket-tts" not in by_name(root)
    put(root, "pocket-tts/config.yaml", data=b"- not a mapping\n")
    assert "pocket-tts" not in by_name(root)


def test_scan_of_a_missing_or_empty_folder_finds_nothing(tmp_path: Path) -> None:
    assert scan(tmp_path / "absent") == []
    assert scan(tmp_path) == []


def test_find_installed(models: Path) -> None:
    model = find_installed(models, "faster-whisper-base")
    assert model is not None
    assert model.kind == "stt"
    assert find_installed(models, "faster-whisper-small") is None


def test_remove_a_piper_voice_deletes_its_two_files_and_leftover_parts(models: Path) -> None:
    leftover = put(models, "piper/en_US-joe-medium.onnx.part")

    removed = remove(models, "piper-en_US-joe-medium")

    assert removed.name == "piper-en_US-joe-medium"
    assert not (models / "piper/en_US-joe-medium.onnx").exists()
    assert not (models / "piper/en_US-joe-medium.onnx.json").exists()
    assert not leftover.exists()
    assert (models / "piper/de_DE-thorsten-medium.onnx").exists()
    assert "piper-de_DE-thorsten-medium" in by_name(models)


@pytest.mark.parametrize("name", ["faster-whisper-base", "smollm2-135m-instruct", "pocket-tts"])
def test_remove_a_folder_model_deletes_its_folder(models: Path, name: str) -> None:
    removed = remove(models, name)

    assert removed.name == name
    assert not (models / name).exists()
    assert name not in by_name(models)
    assert len(by_name(models)) == 4


@pytest.mark.parametrize(
    "name",
    [
        "faster-whisper-small",  # incomplete
        "no-such-model",
        "..",
        "../models",
        "notes",
        "piper-../../etc/passwd",
        "piper",
        "",
    ],
)
def test_remove_what_is_not_an_installed_model_is_not_found(models: Path, name: str) -> None:
    before = sorted(p for p in models.parent.rglob("*"))

    with pytest.raises(NotFound):
        remove(models, name)

    assert sorted(p for p in models.parent.rglob("*")) == before


def test_remove_a_linked_model_folder_removes_the_link_not_its_target(
    models: Path, tmp_path: Path
) -> None:
    elsewhere = put(tmp_path / "elsewhere", "qwen/qwen.gguf").parent
    os.symlink(elsewhere, models / "qwen-linked")
    assert "qwen-linked" in by_name(models)

    remove(models, "qwen-linked")

    assert not (models / "qwen-linked").exists()
    assert (elsewhere / "qwen.gguf").is_file()


def test_remove_refuses_files_that_live_outside_the_models_folder(tmp_path: Path) -> None:
    shared_voices = tmp_path / "shared-voices"
    onnx = put(shared_voices, "en_US-joe-medium.onnx")
    put(shared_voices, "en_US-joe-medium.onnx.json", data=PIPER_CONFIG)
    models = tmp_path / "models"
    models.mkdir()
    os.symlink(shared_voices, models / "piper")

    with pytest.raises(InvalidRequest):
        remove(models, "piper-en_US-joe-medium")

    assert onnx.is_file()


@pytest.mark.model
def test_scan_of_the_real_test_models(test_models: Path) -> None:
    found = by_name(test_models)

    for name, kind in [
        ("faster-whisper-base", "stt"),
        ("faster-whisper-tiny.en", "stt"),
        ("piper-en_US-joe-medium", "tts"),
        ("smollm2-135m-instruct", "chat"),
    ]:
        assert name in found, f"{name} not found in {test_models}"
        assert found[name].kind == kind
        assert found[name].size_bytes > 0
    assert found["faster-whisper-base"].size_bytes > 140_000_000


@pytest.mark.model
def test_scan_agrees_with_the_engines_discovery(test_models: Path) -> None:
    from voxserve.engines.faster_whisper import FasterWhisperEngine
    from voxserve.engines.llama_cpp import LlamaCppEngine
    from voxserve.engines.piper import PiperEngine

    names = set(by_name(test_models))

    assert {f"{e.name}" for e in FasterWhisperEngine.discover(test_models)} <= names
    assert {e.model_name for e in LlamaCppEngine.discover(test_models)} <= names
    piper = PiperEngine.discover(test_models)
    assert piper is not None
    assert {f"piper-{v.id}" for v in piper.capabilities().voices} <= names
