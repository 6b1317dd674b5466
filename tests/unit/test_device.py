"""The device setting of local engines: the choice of device and compute type, the per-engine
settings, and faster-whisper's fallback from CUDA to the CPU under ``auto``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.support.models import models_dir
from voxserve.engines import device as device_module
from voxserve.engines.device import DeviceChoice, choose_device, gpu_layers
from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.registry import discover_engines
from voxserve.errors import EngineFailure
from voxserve.settings import EngineSettings, Settings

CPU = DeviceChoice("cpu", "int8")


@pytest.mark.parametrize(
    ("requested", "gpus", "override", "expected"),
    [
        ("cpu", 1, None, CPU),
        ("auto", 0, None, CPU),
        ("auto", 2, None, DeviceChoice("cuda", "float16", fallback=CPU)),
        ("cuda", 0, None, DeviceChoice("cuda", "float16")),  # asked for: no silent CPU
        ("cuda", 1, "int8_float16", DeviceChoice("cuda", "int8_float16")),
        ("auto", 1, "int8_float16", DeviceChoice("cuda", "int8_float16", fallback=CPU)),
        ("cpu", 0, "int16", DeviceChoice("cpu", "int16")),
    ],
)
def test_device_and_compute_type_choice(
    requested: Any, gpus: int, override: str | None, expected: DeviceChoice
) -> None:
    assert choose_device(requested, override, cuda_count=lambda: gpus) == expected


def test_cuda_is_detected_without_importing_torch() -> None:
    probe = (
        "import sys; from voxserve.engines.device import cuda_device_count; "
        "n = cuda_device_count(); print(n, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    count, torch_loaded = done.stdout.split()
    assert int(count) >= 0 and torch_loaded == "False"


@pytest.mark.parametrize(
    ("requested", "offload", "layers"),
    [("cpu", True, 0), ("auto", True, -1), ("auto", False, 0), ("cuda", True, -1)],
)
def test_llama_gpu_layers(requested: Any, offload: bool, layers: int) -> None:
    assert gpu_layers(requested, offload) == layers


def test_llama_on_cuda_without_a_gpu_build_says_what_is_needed() -> None:
    with pytest.raises(ValueError, match="GGML_CUDA"):
        gpu_layers("cuda", offload_supported=False)


def test_per_engine_devices_override_the_family_and_the_global_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOXSERVE_ENGINES__DEVICE", "cpu")
    monkeypatch.setenv(
        "VOXSERVE_ENGINES__DEVICES", '{"faster-whisper": "cuda", "faster-whisper-tiny.en": "auto"}'
    )
    monkeypatch.setenv("VOXSERVE_ENGINES__COMPUTE_TYPES", '{"faster-whisper": "int8_float16"}')
    engines = Settings().engines
    assert engines.device_for("faster-whisper-base", "faster-whisper") == "cuda"
    assert engines.device_for("faster-whisper-tiny.en", "faster-whisper") == "auto"
    assert engines.device_for("smollm2", "llama-cpp") == "cpu"
    assert engines.compute_type_for("faster-whisper-base", "faster-whisper") == "int8_float16"
    assert engines.compute_type_for("smollm2", "llama-cpp") is None


def test_bad_device_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="device"):
        EngineSettings(device="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pocket-tts runs on the CPU only"):
        EngineSettings(devices={"pocket-tts": "cuda"})


def _whisper_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for file in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / file).write_text("{}")
    return folder


def test_discovered_faster_whisper_engines_get_their_device(tmp_path: Path) -> None:
    _whisper_folder(tmp_path / "models", "faster-whisper-base")
    _whisper_folder(tmp_path / "models", "faster-whisper-tiny.en")
    settings = Settings(
        data_dir=tmp_path,
        models_dir=tmp_path / "models",
        engines=EngineSettings(
            device="cpu",
            devices={"faster-whisper-base": "cuda"},
            compute_types={"faster-whisper": "int8_float16"},
        ),
    )
    whisper = {e.name: e for e in discover_engines(settings) if isinstance(e, FasterWhisperEngine)}
    assert whisper["faster-whisper-base"].device == "cuda"
    assert whisper["faster-whisper-tiny.en"].device == "cpu"
    assert {e.compute_type for e in whisper.values()} == {"int8_float16"}


class FakeWhisperModel:
    """Stands in for ``faster_whisper.WhisperModel``: CUDA fails as on a machine without
    cuBLAS; the CPU loads."""

    loads: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, path: str, *, device: str, compute_type: str, **_: object) -> None:
        FakeWhisperModel.loads.append((device, compute_type))
        if device == "cuda":
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")


@pytest.fixture
def failing_cuda(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    import faster_whisper

    FakeWhisperModel.loads = []
    monkeypatch.setattr(faster_whisper, "WhisperModel", FakeWhisperModel)
    monkeypatch.setattr(device_module, "cuda_device_count", lambda: 1)
    return FakeWhisperModel.loads


def test_auto_falls_back_to_the_cpu_when_cuda_fails(
    tmp_path: Path, failing_cuda: list[tuple[str, str]]
) -> None:
    engine = FasterWhisperEngine(_whisper_folder(tmp_path, "faster-whisper-base"), device="auto")
    engine.load()
    assert failing_cuda == [("cuda", "float16"), ("cpu", "int8")]
    assert engine.placement == CPU


def test_explicit_cuda_fails_naming_the_device(
    tmp_path: Path, failing_cuda: list[tuple[str, str]]
) -> None:
    engine = FasterWhisperEngine(_whisper_folder(tmp_path, "faster-whisper-base"), device="cuda")
    with pytest.raises(EngineFailure, match=r"on cuda \(float16\)"):
        engine.load()
    assert failing_cuda == [("cuda", "float16")]
    assert engine.placement is None


@pytest.mark.model
def test_real_faster_whisper_on_auto_loads_where_it_can() -> None:
    engine = FasterWhisperEngine(models_dir() / "faster-whisper-tiny.en", device="auto")
    engine.load()
    expected = "cuda" if device_module.cuda_device_count() else "cpu"
    assert engine.placement is not None and engine.placement.device == expected
    engine.unload()
