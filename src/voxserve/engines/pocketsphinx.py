"""PocketSphinx: the built-in English recogniser. It needs no download (the ``pocketsphinx``
package ships the en-us acoustic model, dictionary and language model) and is much weaker than
Whisper; it exists so a fresh install can transcribe something.

Audio is cut into utterances by PocketSphinx's voice-activity endpointer, and each utterance is
decoded on its own, which gives segment times and bounds the decoder's work per step.
"""

from __future__ import annotations

import importlib.metadata
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pocketsphinx

from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.protocol import (
    Segment,
    STTCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from voxserve.errors import EngineFailure, Unsupported

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100
"""PocketSphinx's feature frame rate: ``Decoder.seg()`` counts in 10 ms frames."""
MAX_UTTERANCE_SECONDS = 30.0
"""Speech without a pause this long is cut anyway, so one utterance never grows unbounded."""

_ALTERNATE_PRONUNCIATION = re.compile(r"\(\d+\)$")
_BYTES_PER_SECOND = SAMPLE_RATE * 2


@dataclass(frozen=True)
class _Utterance:
    start: float
    pcm: bytes

    @property
    def end(self) -> float:
        return self.start + len(self.pcm) / _BYTES_PER_SECOND


class PocketsphinxEngine:
    """English speech-to-text with PocketSphinx 5 and its bundled en-us model."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        self.version = importlib.metadata.version("pocketsphinx")
        self._decoder: pocketsphinx.Decoder | None = None
        # The decoder is not thread-safe; each utterance is decoded under this lock so that
        # concurrent (or abandoned) transcriptions never interleave inside one utterance.
        self._lock = threading.Lock()

    def capabilities(self) -> STTCapabilities:
        return STTCapabilities(
            languages=("en",),
            language_detection=False,
            word_timestamps=True,
            hotwords=False,
            diarization=False,
            sample_rate=SAMPLE_RATE,
            max_concurrency=1,
        )

    def load(self) -> None:
        try:
            decoder = pocketsphinx.Decoder(loglevel="FATAL")
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineFailure("pocketsphinx could not load its bundled en-us model") from exc
        with self._lock:
            self._decoder = decoder

    def unload(self) -> None:
        with self._lock:
            self._decoder = None

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Transcribe English audio; hotwords, prompt and temperature are ignored (the decoder
        has no use for them).

        Raises:
            Unsupported: a language other than English was asked for.
            EngineFailure: the engine is not loaded, or decoding failed.
        """
        _check_language(options.language)
        if options.task == "translate":
            raise Unsupported(
                "pocketsphinx cannot translate; translation needs a multilingual Whisper model "
                "(voxserve models pull faster-whisper-base).",
                field="task",
            )
        if audio.sample_rate != SAMPLE_RATE:
            raise ValueError(f"pocketsphinx needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate}")
        decoder = self._require_decoder()
        info = TranscriptionInfo(language="en", language_probability=None, duration=audio.duration)
        pcm = _to_pcm16(audio.samples)
        return info, self._segments(decoder, pcm, options.word_timestamps)

    def _require_decoder(self) -> pocketsphinx.Decoder:
        decoder = self._decoder
        if decoder is None:
            raise EngineFailure("pocketsphinx is not loaded")
        return decoder

    def _segments(
        self, decoder: pocketsphinx.Decoder, pcm: bytes, word_timestamps: bool
    ) -> Iterator[Segment]:
        for utterance in _utterances(pcm):
            segment = self._decode(decoder, utterance, word_timestamps)
            if segment is not None:
                yield segment

    def _decode(
        self, decoder: pocketsphinx.Decoder, utterance: _Utterance, word_timestamps: bool
    ) -> Segment | None:
        try:
            with self._lock:
                decoder.start_utt()
                decoder.process_raw(utterance.pcm, full_utt=True)
                decoder.end_utt()
                words = _words(decoder, utterance.start)
        except (RuntimeError, ValueError, IndexError) as exc:
            raise EngineFailure("pocketsphinx failed to decode the audio") from exc
        if not words:
            return None
        text = " ".join(word.word for word in words)
        return Segment(
            text=text,
            start=round(utterance.start, 3),
            end=round(max(utterance.end, words[-1].end), 3),
            words=tuple(words) if word_timestamps else None,
        )


def _check_language(language: str | None) -> None:
    if language is not None and language.lower() != "en":
        raise Unsupported(
            "pocketsphinx recognises English only; install a faster-whisper model: "
            "voxserve models pull faster-whisper-base",
            field="language",
        )


def _to_pcm16(samples: Samples) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def _utterances(pcm: bytes) -> Iterator[_Utterance]:
    """Cut speech out of 16 kHz s16 audio with PocketSphinx's endpointer."""
    endpointer = pocketsphinx.Endpointer(sample_rate=SAMPLE_RATE)
    size = endpointer.frame_bytes
    max_bytes = int(MAX_UTTERANCE_SECONDS * _BYTES_PER_SECOND)
    pieces: list[bytes] = []
    start = 0.0
    for offset in range(0, len(pcm), size):
        frame = pcm[offset : offset + size]
        was_in_speech = endpointer.in_speech
        is_last = offset + size >= len(pcm)
        if is_last:
            # end_stream takes the final (possibly short) frame and flushes open speech.
            speech = endpointer.end_stream(frame) if was_in_speech else None
        else:
            speech = endpointer.process(frame) if len(frame) == size else None
        if speech is None:
            continue
        if not pieces:
            start = endpointer.speech_start if not was_in_speech else start
        pieces.append(speech)
        buffered = sum(len(piece) for piece in pieces)
        if not endpointer.in_speech or is_last or buffered >= max_bytes:
            yield _Utterance(start, b"".join(pieces))
            start += buffered / _BYTES_PER_SECOND
            pieces = []


def _words(decoder: pocketsphinx.Decoder, offset: float) -> list[Word]:
    """The decoded words with absolute times, without fillers (``<s>``, ``<sil>``,
    ``[NOISE]``) and without alternate-pronunciation markers (``word(2)``)."""
    words = []
    for seg in decoder.seg():
        token = seg.word
        if token.startswith(("<", "[", "+")):
            continue
        words.append(
            Word(
                word=_ALTERNATE_PRONUNCIATION.sub("", token),
                start=round(offset + seg.start_frame / FRAMES_PER_SECOND, 3),
                end=round(offset + (seg.end_frame + 1) / FRAMES_PER_SECOND, 3),
                probability=min(max(float(seg.prob), 0.0), 1.0),
            )
        )
    return words
