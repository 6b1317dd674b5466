"""The server with real engines from the test models folder, driven by the official SDKs and
judged by meaning: transcripts by word error rate, speech by transcribing it back."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mistralai.client import Mistral

from tests.support import speech_data
from tests.support.live_server import LiveServer, run_server
from tests.support.models import models_dir
from tests.support.wer import wer
from voxserve.settings import Settings

pytestmark = pytest.mark.model

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore.",
    "We will meet at the station at nine in the morning.",
    "Reading books is one of the best ways to learn new words.",
]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    models = models_dir()
    data = tmp_path_factory.mktemp("data")
    settings = Settings(
        data_dir=data,
        models_dir=models,
        host="127.0.0.1",
        port=0,
        engines={"default_stt": "faster-whisper-base"},  # type: ignore[arg-type]
    )
    with run_server(settings) as server:
        yield server


@pytest.fixture(scope="module")
def mistral(real_server: LiveServer) -> Mistral:
    return Mistral(server_url=real_server.url, timeout_ms=600_000)


def transcribe(mistral: Mistral, audio: bytes, name: str, **options: object) -> str:
    result = mistral.audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file={"file_name": name, "content": audio},
        **options,  # type: ignore[arg-type]
    )
    return result.text


def test_piper_speech_transcribes_back(mistral: Mistral) -> None:
    spoken = []
    for sentence in SENTENCES:
        result = mistral.audio.speech.complete(
            input=sentence, voice_id="piper:en_US-joe-medium", response_format="wav"
        )
        spoken.append(
            transcribe(mistral, base64.b64decode(result.audio_data), "s.wav", language="en")
        )
    score = wer(SENTENCES, spoken)
    assert score <= 0.15, (score, spoken)


CLAUSE_SENTENCES = [
    "When the morning train arrived at the station, the passengers stepped onto the platform, "
    "and the conductor checked their tickets.",
    "Although it rained all afternoon, the children played in the garden, "
    "building a small house out of branches and leaves.",
    "If you want to bake fresh bread at home, you need flour, water and salt, "
    "and a little patience while the dough rises.",
]


def test_piper_speech_made_while_busy_transcribes_back(mistral: Mistral) -> None:
    """Concurrent requests share the engine, so their sentences are spoken clause by clause;
    the joined audio must still say the whole sentence."""

    def speak(sentence: str) -> bytes:
        result = mistral.audio.speech.complete(
            input=sentence, voice_id="piper:en_US-joe-medium", response_format="wav"
        )
        return base64.b64decode(result.audio_data)

    with ThreadPoolExecutor(len(CLAUSE_SENTENCES)) as pool:
        audios = list(pool.map(speak, CLAUSE_SENTENCES))
    spoken = [transcribe(mistral, audio, "s.wav", language="en") for audio in audios]
    score = wer(CLAUSE_SENTENCES, spoken)
    assert score <= 0.15, (score, spoken)


def test_english_reference_clips_wer(mistral: Mistral) -> None:
    clips = [
        c for c in speech_data.clips(language="en") if c.is_reference and c.path.suffix != ".raw"
    ]
    assert len(clips) >= 20
    hypotheses = [
        transcribe(mistral, Path(c.path).read_bytes(), c.path.name, language="en") for c in clips
    ]
    score = wer([c.transcript for c in clips], hypotheses)
    assert score <= 0.06, score


@pytest.mark.parametrize("language", ["en", "de", "es", "fr"])
def test_language_detection(mistral: Mistral, language: str) -> None:
    clip = next(
        c
        for c in speech_data.clips(language=language)
        if c.file.startswith("picovoice_leopard") and c.is_reference
    )
    result = mistral.audio.transcriptions.complete(
        model="voxtral-mini-latest",
        file={"file_name": clip.path.name, "content": clip.path.read_bytes()},
    )
    assert result.language == language


def test_context_bias_hotword(mistral: Mistral) -> None:
    clip = speech_data.clip("faster_whisper_tests/hotwords.mp3")
    text = transcribe(mistral, clip.path.read_bytes(), "h.mp3", context_bias=["ComfyUI"])
    assert "ComfyUI" in text
