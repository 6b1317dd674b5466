"""The Pocket TTS engine on a tiny model with random weights, built offline (no quality claims).

Tests that run the model skip unless torch and pocket-tts are installed (``voxserve[pocket-tts]``);
discovery and import checks run without them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.speech_data import clips, decode
from tests.support.tiny_pocket import FRAME_SAMPLES, SAMPLE_RATE, build_tiny_pocket
from voxserve.audio.stretch import time_stretch
from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.manager import EngineManager
from voxserve.engines.pocket_tts import INSTALL_HINT, NO_VOICE, PocketTTSEngine
from voxserve.engines.protocol import SynthesisRequest, TTSEngine
from voxserve.errors import InvalidRequest, Unsupported, VoiceNotFound
from voxserve.settings import EngineSettings

SHORT_TEXT = "Hello there. How are you today?"
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog again."] * 40)
"""About 40 pocket-tts text chunks: a minute of generation if nothing stops it."""


@pytest.fixture(scope="module")
def pocket() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("pocket_tts")


@pytest.fixture(scope="module")
def models_dir(pocket: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny model with its (random) weights file."""
    root = tmp_path_factory.mktemp("models")
    build_tiny_pocket(root / "pocket-tts")
    return root


@pytest.fixture(scope="module")
def engine(models_dir: Path) -> Iterator[PocketTTSEngine]:
    found = PocketTTSEngine.discover(models_dir)
    assert found is not None
    found.load()
    yield found
    found.unload()


@pytest.fixture(scope="module")
def references() -> tuple[AudioClip, AudioClip]:
    """Two real speech clips of 2 to 8 s by different speakers."""
    picked: dict[str, AudioClip] = {}
    for row in clips(folder="librispeech_test-other"):
        if 2.0 <= row.duration <= 8.0 and row.speaker not in picked and row.path.is_file():
            picked[row.speaker] = decode(row.path, SAMPLE_RATE)
        if len(picked) == 2:
            first, second = picked.values()
            return first, second
    pytest.skip("needs two librispeech_test-other clips of 2 to 8 s by different speakers")


@pytest.fixture(scope="module")
def voice_state(engine: PocketTTSEngine, references: tuple[AudioClip, AudioClip]) -> bytes:
    return engine.clone_voice(references[0])


def speak(engine: PocketTTSEngine, request: SynthesisRequest, seed: int = 0) -> list[Samples]:
    import torch

    # Sampling draws from torch's global generator (in pocket-tts's generation thread).
    torch.manual_seed(seed)
    return list(engine.synthesize(request))


def assert_same_audio(actual: Samples, expected: Samples) -> None:
    # Generation is exact given the seed, but the decoder thread decodes however many frames are
    # queued in one call, and different batching rounds differently (about 1e-7).
    assert len(actual) == len(expected)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- without the model


def test_import_needs_neither_torch_nor_pocket_tts() -> None:
    code = (
        "import sys, voxserve.engines.pocket_tts\n"
        "print(sorted(m for m in ('torch', 'pocket_tts') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_discover_needs_the_config_file(tmp_path: Path) -> None:
    assert PocketTTSEngine.discover(tmp_path) is None
    (tmp_path / "pocket-tts").mkdir()
    assert PocketTTSEngine.discover(tmp_path) is None


def write_config(folder: Path, weights: str = "model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"0" * 10)
    config = folder / "config.yaml"
    config.write_text(
        f"weights_path: {weights}\nflow_lm:\n  lookup_table:\n    tokenizer_path: tokenizer.json\n"
    )
    return config


def test_without_the_package_discover_skips_and_load_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "pocket-tts")
    monkeypatch.setitem(sys.modules, "pocket_tts", None)  # makes the import fail
    assert PocketTTSEngine.discover(tmp_path) is None
    with pytest.raises(Unsupported) as caught:
        PocketTTSEngine(config).load()
    assert caught.value.message == INSTALL_HINT


def test_config_must_name_local_files_that_exist(tmp_path: Path) -> None:
    remote = write_config(tmp_path / "a", weights="hf://kyutai/pocket-tts/model.safetensors")
    problem = PocketTTSEngine(remote).problem()
    assert problem is not None
    assert "local file" in problem
    missing = write_config(tmp_path / "b", weights="elsewhere.safetensors")
    problem = PocketTTSEngine(missing).problem()
    assert problem is not None
    assert "missing file" in problem
    assert PocketTTSEngine(write_config(tmp_path / "c")).problem() is None


def test_version_follows_the_model_files(tmp_path: Path) -> None:
    config = write_config(tmp_path / "pocket-tts")
    before = PocketTTSEngine(config).version
    assert PocketTTSEngine(config).version == before
    (tmp_path / "pocket-tts" / "model.safetensors").write_bytes(b"0" * 11)
    assert PocketTTSEngine(config).version != before


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_time_stretch_changes_length_and_keeps_pitch(speed: float) -> None:
    rate = 24000
    tone = np.sin(2 * np.pi * 220 * np.arange(rate) / rate).astype(np.float32)
    stretched = time_stretch(tone, speed, rate)
    assert stretched.dtype == np.float32
    assert len(stretched) == round(rate / speed)
    spectrum = np.abs(np.fft.rfft(stretched))
    assert np.fft.rfftfreq(len(stretched), 1 / rate)[np.argmax(spectrum)] == pytest.approx(220, 2)
    # WSOLA keeps the waveform continuous: the level stays that of the tone (no phasing dips).
    middle = stretched[rate // 10 : -rate // 10]
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(np.sqrt(0.5), rel=0.05)


# --------------------------------------------------------------------------- with the tiny model


def test_random_weights_only_when_allowed(
    pocket: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = build_tiny_pocket(tmp_path / "pocket-tts", weights=False)
    assert PocketTTSEngine.discover(tmp_path) is None
    with pytest.raises(Unsupported, match="names no weights"):
        PocketTTSEngine(config).load()
    engine = PocketTTSEngine.discover(tmp_path, allow_random_weights=True)
    assert engine is not None
    engine.load()
    assert "RANDOM WEIGHTS" in caplog.text
    state = engine.clone_voice(AudioClip(np.full(8000, 0.1, np.float32), 16000))
    assert speak(engine, SynthesisRequest(text="Hi.", voice_state=state))


def test_loads_clones_and_speaks_offline(
    models_dir: Path, references: tuple[AudioClip, AudioClip], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    engine = PocketTTSEngine.discover(models_dir)
    assert isinstance(engine, TTSEngine)
    engine.load()
    caps = engine.capabilities()
    assert (caps.sample_rate, caps.cloning, caps.max_concurrency) == (SAMPLE_RATE, True, 1)
    state = engine.clone_voice(references[0])
    assert speak(engine, SynthesisRequest(text="Hi.", voice_state=state))


def test_streams_float32_chunks_of_the_expected_length(
    engine: PocketTTSEngine, voice_state: bytes
) -> None:
    chunks = speak(engine, SynthesisRequest(text=SHORT_TEXT, voice_state=voice_state))
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
        assert np.isfinite(chunk).all()
    total = sum(len(chunk) for chunk in chunks)
    assert total % FRAME_SAMPLES == 0
    # Without EOS, pocket-tts makes (tokens / 3 + 2) s per text chunk; tokens here are at most
    # one per character plus a few for the prompt.
    assert 2.0 <= total / SAMPLE_RATE <= 2 * ((len(SHORT_TEXT) + 8) / 3 + 2)


def test_same_voice_same_audio_other_voice_other_audio(
    engine: PocketTTSEngine, references: tuple[AudioClip, AudioClip], voice_state: bytes
) -> None:
    assert engine.clone_voice(references[0]) == voice_state
    other = engine.clone_voice(references[1])
    assert other != voice_state
    request = SynthesisRequest(text=SHORT_TEXT, voice_state=voice_state)
    first = np.concatenate(speak(engine, request))
    assert_same_audio(first, np.concatenate(speak(engine, request)))
    changed = np.concatenate(speak(engine, SynthesisRequest(text=SHORT_TEXT, voice_state=other)))
    assert len(changed) == len(first)
    assert not np.allclose(changed, first)


def test_preset_voices_come_from_the_voices_folder(
    models_dir: Path, tmp_path: Path, voice_state: bytes
) -> None:
    shutil.copytree(models_dir / "pocket-tts", tmp_path / "pocket-tts")
    (tmp_path / "pocket-tts" / "voices").mkdir()
    (tmp_path / "pocket-tts" / "voices" / "reader.safetensors").write_bytes(voice_state)
    engine = PocketTTSEngine.discover(tmp_path)
    assert engine is not None
    assert [voice.id for voice in engine.capabilities().voices] == ["reader"]
    engine.load()
    cloned = speak(engine, SynthesisRequest(text="Hi.", voice_state=voice_state))
    preset = speak(engine, SynthesisRequest(text="Hi.", voice="reader"))
    default = speak(engine, SynthesisRequest(text="Hi."))
    assert_same_audio(np.concatenate(preset), np.concatenate(cloned))
    assert_same_audio(np.concatenate(default), np.concatenate(cloned))
    with pytest.raises(VoiceNotFound):
        speak(engine, SynthesisRequest(text="Hi.", voice="nobody"))


def test_refuses_requests_it_cannot_serve(engine: PocketTTSEngine, voice_state: bytes) -> None:
    with pytest.raises(Unsupported) as caught:
        speak(engine, SynthesisRequest(text="Hi."))
    assert caught.value.message == NO_VOICE
    with pytest.raises(Unsupported, match="speaks 'en'"):
        speak(engine, SynthesisRequest(text="Salut.", voice_state=voice_state, language="fr"))
    with pytest.raises(InvalidRequest, match="not a pocket-tts voice state"):
        speak(engine, SynthesisRequest(text="Hi.", voice_state=b"not safetensors"))
    with pytest.raises(InvalidRequest, match="another Pocket TTS model"):
        speak(engine, SynthesisRequest(text="Hi.", voice_state=_one_layer_less(voice_state)))
    assert speak(engine, SynthesisRequest(text="  ", voice_state=voice_state)) == []


def _one_layer_less(state: bytes) -> bytes:
    import safetensors.torch

    tensors = safetensors.torch.load(state)
    last = max(key.split("/")[0] for key in tensors)
    return safetensors.torch.save({k: v for k, v in tensors.items() if not k.startswith(last)})


def test_speed_stretches_the_audio(engine: PocketTTSEngine, voice_state: bytes) -> None:
    natural = speak(engine, SynthesisRequest(text="Hi there.", voice_state=voice_state))
    faster = speak(engine, SynthesisRequest(text="Hi there.", voice_state=voice_state, speed=2.0))
    assert len(faster) == 1
    assert len(faster[0]) == round(sum(len(chunk) for chunk in natural) / 2)


def test_closing_the_stream_stops_generation(engine: PocketTTSEngine, voice_state: bytes) -> None:
    baseline = threading.active_count()
    stream = engine.synthesize(SynthesisRequest(text=LONG_TEXT, voice_state=voice_state))
    assert len(next(stream)) > 0
    assert threading.active_count() > baseline  # pocket-tts's generation and decoder threads
    started = time.monotonic()
    stream.close()
    # Unstopped, the remaining text would take about a minute to generate.
    assert time.monotonic() - started < 5.0
    deadline = time.monotonic() + 2.0
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == baseline


async def test_clones_and_streams_through_the_manager(
    models_dir: Path, references: tuple[AudioClip, AudioClip]
) -> None:
    engine = PocketTTSEngine.discover(models_dir)
    assert engine is not None
    manager = EngineManager([engine], EngineSettings())
    try:
        state = await manager.clone_voice("pocket-tts", references[0])
        request = SynthesisRequest(text=LONG_TEXT, voice_state=state)
        stream = manager.stream_tts("pocket-tts", request)
        assert len(await anext(stream)) > 0
        await stream.aclose()  # a client went away after the first chunk
        assert manager.status()[0]["active"] == 0
    finally:
        await manager.close()
