"""The built-in eSpeak NG engine (no weights needed; the intelligibility check needs whisper)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soxr

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.espeak import MAX_WPM, MIN_WPM, EspeakEngine, iso639_1, speed_to_wpm
from voxserve.engines.protocol import SynthesisRequest
from voxserve.errors import Unsupported, VoiceNotFound

SENTENCES = "The quick brown fox jumps over the lazy dog. Please call me back when you get home."


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    engine = EspeakEngine()
    engine.load()
    return engine


def speak(engine: EspeakEngine, text: str, **options: object) -> Samples:
    chunks = list(engine.synthesize(SynthesisRequest(text, **options)))  # type: ignore[arg-type]
    assert chunks
    assert all(chunk.dtype == np.float32 for chunk in chunks)
    return np.concatenate(chunks)


@pytest.mark.parametrize(("voice", "text"), [("en-us", "Hello world."), ("de", "Hallo Welt.")])
def test_hello_world_is_audible_and_plausibly_long(
    engine: EspeakEngine, voice: str, text: str
) -> None:
    audio = speak(engine, text, voice=voice)
    seconds = len(audio) / engine.capabilities().sample_rate
    assert 0.5 < seconds < 3.0
    assert float(np.sqrt(np.mean(audio**2))) > 0.02
    assert float(np.abs(audio).max()) <= 1.0


def test_faster_speech_is_shorter(engine: EspeakEngine) -> None:
    normal = speak(engine, SENTENCES, speed=1.0)
    fast = speak(engine, SENTENCES, speed=2.0)
    assert len(fast) < 0.7 * len(normal)


def test_speed_maps_to_words_per_minute_within_range() -> None:
    assert speed_to_wpm(1.0) == 175
    assert speed_to_wpm(2.0) == 350
    assert speed_to_wpm(0.25) == MIN_WPM
    assert speed_to_wpm(4.0) == MAX_WPM


def test_voices_cover_many_languages(engine: EspeakEngine) -> None:
    caps = engine.capabilities()
    voices = {voice.id: voice for voice in caps.voices}
    assert len(voices) == len(caps.voices) > 50
    assert voices["en-us"].languages == ("en",)
    assert voices["en-us"].name == "English (America)"
    assert "fr" in voices["fr"].languages
    assert voices["cmn"].languages == ("zh",)
    assert {"en", "fr", "de", "zh"} <= set(caps.languages)
    assert caps.sample_rate == 22050
    assert not caps.cloning
    assert caps.max_concurrency == 1


def test_language_picks_a_voice(engine: EspeakEngine) -> None:
    german = speak(engine, "Guten Morgen.", language="de")
    assert len(german) > 0
    with pytest.raises(Unsupported):
        speak(engine, "Hello.", language="xx")


def test_unknown_voice_is_refused(engine: EspeakEngine) -> None:
    with pytest.raises(VoiceNotFound):
        speak(engine, "Hello.", voice="no-such-voice")


def test_closing_a_stream_stops_it_and_frees_the_library(engine: EspeakEngine) -> None:
    stream = engine.synthesize(SynthesisRequest("word " * 2000))
    first = next(stream)
    stream.close()
    assert 0 < len(first) < 22050 * 60
    assert len(speak(engine, "Hello world.")) > 0  # the library lock is free again


def test_empty_text_makes_no_audio(engine: EspeakEngine) -> None:
    assert list(engine.synthesize(SynthesisRequest("   "))) == []


def test_cloning_is_unsupported(engine: EspeakEngine) -> None:
    clip = AudioClip(np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(Unsupported, match="pocket-tts"):
        engine.clone_voice(clip)
    with pytest.raises(Unsupported, match="pocket-tts"):
        speak(engine, "Hello.", voice_state=b"state")


def test_language_codes_are_normalised() -> None:
    assert iso639_1("en-us") == "en"
    assert iso639_1("en_GB") == "en"
    assert iso639_1("cmn") == "zh"
    assert iso639_1("haw") == "haw"


# ---------------------------------------------------------------- intelligibility


def whisper_base_dir() -> Path:
    root = os.environ.get("VOXSERVE_TEST_MODELS")
    if not root:
        pytest.skip("VOXSERVE_TEST_MODELS is not set (run shared/test-models/fetch DIR)")
    folder = Path(root) / "faster-whisper-base"
    if not (folder / "model.bin").is_file():
        pytest.skip(f"faster-whisper-base not found under VOXSERVE_TEST_MODELS ({root})")
    return folder


def word_error_rate(reference: str, audio: Samples, sample_rate: int) -> float:
    import jiwer
    from faster_whisper import WhisperModel
    from whisper_normalizer.english import EnglishTextNormalizer

    model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8")
    audio16k = soxr.resample(audio, sample_rate, 16000).astype(np.float32)
    segments, _ = model.transcribe(audio16k, language="en", beam_size=5)
    heard = " ".join(segment.text for segment in segments)
    normalise = EnglishTextNormalizer()
    return float(jiwer.wer(normalise(reference), normalise(heard)))


@pytest.mark.model
@pytest.mark.slow
def test_speech_is_intelligible(engine: EspeakEngine) -> None:
    audio = speak(engine, SENTENCES, voice="en-us")
    assert word_error_rate(SENTENCES, audio, engine.capabilities().sample_rate) < 0.35
