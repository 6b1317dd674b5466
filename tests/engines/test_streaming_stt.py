"""Streaming recognition over faster-whisper base (LocalAgreement): real clips in 1 s steps."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.support import speech_data
from tests.support.models import models_dir
from tests.support.wer import wer
from voxserve.engines.faster_whisper import FasterWhisperEngine
from voxserve.engines.protocol import TranscriptionOptions, Word
from voxserve.engines.streaming import AgreementStream, join_words

pytestmark = pytest.mark.model
CLIPS = (
    "f5tts_examples/basic_ref_en.wav",
    "faster_whisper_tests/jfk.flac",
    "ljspeech/LJ001-0004.flac",
)
STEP = 16000


@pytest.fixture(scope="module")
def base() -> Iterator[FasterWhisperEngine]:
    engine = FasterWhisperEngine(models_dir() / "faster-whisper-base")
    engine.load()
    yield engine
    engine.unload()


def stream(engine: FasterWhisperEngine, samples: np.ndarray) -> tuple[list[Word], float | None]:
    """Every confirmed word, and the audio time at which the first one was confirmed."""
    session = AgreementStream(engine.transcribe, 16000, TranscriptionOptions())
    words: list[Word] = []
    first = None
    for at in range(0, len(samples), STEP):
        update = session.step(samples[at : at + STEP])
        if update.words and first is None:
            first = min(at + STEP, len(samples)) / 16000
        words.extend(update.words)
    final = session.commit(np.zeros(0, dtype=np.float32))
    words.extend(final.words)
    assert final.segment is not None and final.language == "en"
    return words, first


def test_streamed_text_is_as_good_as_batch_and_arrives_early(base: FasterWhisperEngine) -> None:
    refs, streamed, batch = [], [], []
    for name in CLIPS:
        clip = speech_data.clip(name)
        audio = speech_data.decode(clip.path)
        words, first = stream(base, audio.samples)
        assert first is not None and first < clip.duration - 1.0  # words before the audio ends
        assert [w.start for w in words] == sorted(w.start for w in words)
        _, segments = base.transcribe(audio, TranscriptionOptions())
        refs.append(clip.transcript)
        streamed.append(join_words(words))
        batch.append(" ".join(s.text for s in segments))
    assert wer(refs, streamed) <= 1.15 * wer(refs, batch) + 0.02


def test_window_stays_bounded_on_long_unbroken_speech(base: FasterWhisperEngine) -> None:
    clips = [
        speech_data.decode(speech_data.clip(f"ljspeech/LJ001-000{i}.flac").path) for i in (1, 3, 5)
    ]
    audio = np.concatenate([c.samples for c in clips])  # ~27 s without a commit
    session = AgreementStream(base.transcribe, 16000, TranscriptionOptions(), max_window_s=8.0)
    segments = 0
    for at in range(0, len(audio), 2 * STEP):
        update = session.step(audio[at : at + 2 * STEP])
        segments += update.segment is not None
        assert session.window_seconds <= 8.0 + 2 * STEP / 16000
    assert segments >= 2
