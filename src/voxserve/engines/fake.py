"""Deterministic fake engines for fast unit and API tests. They make no speech and recognise
nothing: they exist so tests can drive every code path without model weights. Never registered
by default; tests pass them to ``create_app``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.protocol import (
    ChatCapabilities,
    ChatDelta,
    ChatRequest,
    PresetVoice,
    Segment,
    STTCapabilities,
    SynthesisRequest,
    TranscriptionInfo,
    TranscriptionOptions,
    TTSCapabilities,
    Word,
)
from voxserve.errors import EngineFailure, Unsupported


class FakeTTSEngine:
    """Speaks every character as 10 ms of a tone (pitch from the voice), in one chunk per word.

    ``delay`` sleeps per chunk (to test concurrency and cancellation); ``fail_on`` raises
    ``EngineFailure`` when the text contains it.
    """

    name = "fake-tts"
    version = "1"

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        cloning: bool = True,
        max_concurrency: int = 1,
        delay: float = 0.0,
        fail_on: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.cloning = cloning
        self.max_concurrency = max_concurrency
        self.delay = delay
        self.fail_on = fail_on
        self.loaded = False
        self.active = 0
        self.peak_active = 0
        self.requests: list[SynthesisRequest] = []
        self.clones = 0
        """How many voice states were computed (to test that they are cached)."""
        self._lock = threading.Lock()

    def capabilities(self) -> TTSCapabilities:
        return TTSCapabilities(
            sample_rate=self.sample_rate,
            voices=(
                PresetVoice("alice", "Alice", ("en",), "female", ("happy", "sad")),
                PresetVoice("bob", "Bob", ("en", "fr"), "male"),
            ),
            languages=("en", "fr"),
            cloning=self.cloning,
            max_concurrency=self.max_concurrency,
        )

    def load(self) -> None:
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        if self.fail_on and self.fail_on in request.text:
            raise EngineFailure("fake engine failure")
        if request.voice_state is not None and not self.cloning:
            raise Unsupported("fake engine cannot clone")
        self.requests.append(request)
        pitch = 220.0 if request.voice != "bob" else 110.0
        if request.voice_state:
            pitch = 300.0 + (request.voice_state[0] % 100)
        with self._lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            for word in request.text.split():
                if self.delay:
                    time.sleep(self.delay)
                n = int(self.sample_rate * 0.01 * (len(word) + 1) / request.speed)
                t = np.arange(n, dtype=np.float32) / self.sample_rate
                yield (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)
        finally:
            with self._lock:
                self.active -= 1

    def clone_voice(self, reference: AudioClip) -> bytes:
        if not self.cloning:
            raise Unsupported("fake engine cannot clone")
        self.clones += 1
        energy = float(np.abs(reference.samples).mean()) if len(reference.samples) else 0.0
        return bytes([int(energy * 1000) % 256]) + b"fake-voice-state"


class FakeSTTEngine:
    """Answers ``transcript`` for any audio, split into one segment per sentence spread over the
    clip's duration, with evenly spaced word times.

    It cannot translate (``Unsupported``) unless given a ``translation``: then a translate task
    answers that text instead, as if the audio had been spoken in another language.
    """

    name = "fake-stt"
    version = "1"

    def __init__(
        self,
        transcript: str = "This is a fake transcript.",
        language: str = "en",
        *,
        translation: str | None = None,
    ):
        self.transcript = transcript
        self.language = language
        self.translation = translation
        self.calls: list[TranscriptionOptions] = []

    def capabilities(self) -> STTCapabilities:
        return STTCapabilities(
            languages=(),
            language_detection=True,
            word_timestamps=True,
            hotwords=True,
            translation=self.translation is not None,
        )

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self.calls.append(options)
        text = self.transcript
        if options.task == "translate":
            if self.translation is None:
                raise Unsupported(
                    "The fake-stt engine cannot translate; give it a translation to test with "
                    "(FakeSTTEngine(translation=...)), or use a multilingual Whisper model."
                )
            text = self.translation
        info = TranscriptionInfo(options.language or self.language, 1.0, audio.duration)
        return info, self._segments(text, audio.duration, options.word_timestamps)

    def _segments(self, text: str, duration: float, words: bool) -> Iterator[Segment]:
        sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
        step = duration / max(len(sentences), 1)
        for i, sentence in enumerate(sentences):
            start, end = i * step, (i + 1) * step
            word_list = None
            if words:
                tokens = sentence.split()
                w = (end - start) / len(tokens)
                word_list = tuple(
                    Word(tok, start + j * w, start + (j + 1) * w, 1.0)
                    for j, tok in enumerate(tokens)
                )
            yield Segment(sentence, start, end, word_list)


class FakeChatEngine:
    """Answers with the last user message's text reversed word by word, one word per delta, and
    remembers every request (tests read what reached the model)."""

    name = "fake-chat"
    version = "1"

    def __init__(self, *, context_length: int = 4096, audio_input: bool = False) -> None:
        self.context_length = context_length
        self.audio_input = audio_input
        self.requests: list[ChatRequest] = []

    def capabilities(self) -> ChatCapabilities:
        return ChatCapabilities(
            context_length=self.context_length, audio_input=self.audio_input, models=("fake-chat",)
        )

    def load(self) -> None:
        pass

    def unload(self) -> None:
        pass

    def count_tokens(self, request: ChatRequest) -> int:
        return sum(len(m.content.split()) + 4 for m in request.messages)

    def complete(self, request: ChatRequest) -> Iterator[ChatDelta]:
        self.requests.append(request)
        last = next((m for m in reversed(request.messages) if m.role == "user"), None)
        words = list(reversed((last.content if last else "").split())) or ["..."]
        if request.max_tokens is not None:
            words = words[: request.max_tokens]
        for i, word in enumerate(words):
            yield ChatDelta(text=word if i == 0 else " " + word)
        yield ChatDelta(
            finish_reason="stop",
            prompt_tokens=self.count_tokens(request),
            completion_tokens=len(words),
        )
