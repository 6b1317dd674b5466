"""The Piper engine: discovery without weights; synthesis with the test voice (marker model)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soxr

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.manager import EngineManager
from voxserve.engines.piper import SAMPLE_RATE, PiperEngine
from voxserve.engines.protocol import SynthesisRequest
from voxserve.errors import Unsupported, VoiceNotFound
from voxserve.settings import EngineSettings

JOE = "en_US-joe-medium"
THREE_SENTENCES = "The weather is nice today. I would like a cup of tea. Please close the door."
FIVE_SENTENCES = (
    "The train to the city leaves at nine in the morning. "
    "She bought fresh bread and a bottle of milk at the market. "
    "Please remember to water the plants while I am away. "
    "The children played football in the park until it got dark. "
    "We should finish this report before the meeting on Friday."
)


def write_voice(folder: Path, stem: str, config: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.onnx").write_bytes(b"")
    (folder / f"{stem}.onnx.json").write_text(json.dumps(config))


def test_discover_finds_nothing_in_an_empty_folder(tmp_path: Path) -> None:
    assert PiperEngine.discover(tmp_path) is None
    (tmp_path / "piper").mkdir()
    assert PiperEngine.discover(tmp_path) is None


def test_discover_skips_voices_without_a_usable_config(tmp_path: Path) -> None:
    (tmp_path / "piper").mkdir()
    (tmp_path / "piper" / "en_US-lonely-low.onnx").write_bytes(b"")
    write_voice(tmp_path / "piper", "en_US-broken-low", {"audio": {}})
    assert PiperEngine.discover(tmp_path) is None


def test_discover_reads_voice_metadata_from_configs(tmp_path: Path) -> None:
    folder = tmp_path / "piper"
    write_voice(
        folder,
        "de_DE-kerstin_female-low",
        {"audio": {"sample_rate": 16000}, "language": {"code": "de_DE"}},
    )
    write_voice(folder, "fr_FR-siwis-medium", {"audio": {"sample_rate": 22050}, "gender": "female"})
    engine = PiperEngine.discover(tmp_path)
    assert engine is not None
    caps = engine.capabilities()
    german, french = caps.voices
    assert (german.id, german.name, german.languages) == (
        "de_DE-kerstin_female-low",
        "Kerstin Female (de_DE, low)",
        ("de",),
    )
    assert german.gender == "female"
    assert (french.languages, french.gender) == (("fr",), "female")
    assert caps.languages == ("de", "fr")
    assert caps.sample_rate == SAMPLE_RATE
    assert not caps.cloning
    assert caps.max_concurrency == 1
    with pytest.raises(Unsupported, match="pocket-tts"):
        engine.clone_voice(AudioClip(np.zeros(16000, dtype=np.float32), 16000))
    with pytest.raises(Unsupported, match="pocket-tts"):
        next(engine.synthesize(SynthesisRequest("Hallo.", voice_state=b"state")))
    with pytest.raises(VoiceNotFound):
        next(engine.synthesize(SynthesisRequest("Hallo.", voice="de_DE-nobody-low")))
    with pytest.raises(Unsupported):
        next(engine.synthesize(SynthesisRequest("Hello.", language="ja")))


# ---------------------------------------------------------------- with the real test voice


def models_dir() -> Path:
    root = os.environ.get("VOXSERVE_TEST_MODELS")
    if not root:
        pytest.skip("VOXSERVE_TEST_MODELS is not set (run shared/test-models/fetch DIR)")
    return Path(root)


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    if not (models_dir() / "piper" / f"{JOE}.onnx").is_file():
        pytest.skip(f"{JOE} not found under VOXSERVE_TEST_MODELS/piper")
    found = PiperEngine.discover(models_dir())
    assert found is not None
    return found


def speak(engine: PiperEngine, text: str, **options: object) -> list[Samples]:
    chunks = list(engine.synthesize(SynthesisRequest(text, **options)))  # type: ignore[arg-type]
    assert all(chunk.dtype == np.float32 and chunk.ndim == 1 for chunk in chunks)
    return chunks


@pytest.mark.model
def test_joe_is_listed_as_english(engine: PiperEngine) -> None:
    voices = {voice.id: voice for voice in engine.capabilities().voices}
    assert voices[JOE].languages == ("en",)
    assert voices[JOE].name == "Joe (en_US, medium)"


@pytest.mark.model
def test_sentences_stream_one_by_one(engine: PiperEngine) -> None:
    chunks = speak(engine, THREE_SENTENCES, voice=JOE)
    assert len(chunks) == 3
    seconds = sum(len(c) for c in chunks) / SAMPLE_RATE
    assert 3.0 < seconds < 9.0
    assert all(float(np.sqrt(np.mean(c**2))) > 0.02 for c in chunks)


@pytest.mark.model
def test_faster_speech_is_shorter(engine: PiperEngine) -> None:
    normal = sum(len(c) for c in speak(engine, THREE_SENTENCES))
    fast = sum(len(c) for c in speak(engine, THREE_SENTENCES, speed=2.0))
    assert fast < 0.75 * normal


@pytest.mark.model
async def test_streams_through_the_manager(engine: PiperEngine) -> None:
    manager = EngineManager([engine], EngineSettings())
    request = SynthesisRequest("Hello there. How are you?", voice=JOE)
    chunks = [chunk async for chunk in manager.stream_tts("piper", request)]
    assert len(chunks) == 2
    assert manager.status()[0]["active"] == 0


def word_error_rate(reference: str, audio: Samples, sample_rate: int) -> float:
    import jiwer
    from faster_whisper import WhisperModel
    from whisper_normalizer.english import EnglishTextNormalizer

    folder = models_dir() / "faster-whisper-base"
    if not (folder / "model.bin").is_file():
        pytest.skip("faster-whisper-base not found under VOXSERVE_TEST_MODELS")
    model = WhisperModel(str(folder), device="cpu", compute_type="int8")
    audio16k = soxr.resample(audio, sample_rate, 16000).astype(np.float32)
    segments, _ = model.transcribe(audio16k, language="en", beam_size=5)
    heard = " ".join(segment.text for segment in segments)
    normalise = EnglishTextNormalizer()
    return float(jiwer.wer(normalise(reference), normalise(heard)))


@pytest.mark.model
@pytest.mark.slow
def test_speech_is_intelligible(engine: PiperEngine) -> None:
    audio = np.concatenate(speak(engine, FIVE_SENTENCES, voice=JOE))
    assert word_error_rate(FIVE_SENTENCES, audio, SAMPLE_RATE) <= 0.15
