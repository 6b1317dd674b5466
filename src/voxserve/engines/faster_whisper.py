"""faster-whisper: Whisper on CTranslate2, int8 on the CPU or float16 on CUDA (``engines.device``).

One engine per model folder ``<models_dir>/faster-whisper-<size>/`` in the hub's conversion
layout (``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt`` or ``.json``).
Nothing is ever downloaded: the folder path goes straight to CTranslate2, and the Silero VAD model
used by ``vad_filter`` ships inside the faster-whisper package.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxserve.audio.types import AudioClip
from voxserve.engines.checkpoints import DecodeAbandoned, checkpoint
from voxserve.engines.device import Device, DeviceChoice, choose_device
from voxserve.engines.protocol import (
    Segment,
    STTCapabilities,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)
from voxserve.engines.streaming import AgreementStream, STTStream
from voxserve.errors import EngineFailure, Unsupported

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import Segment as WhisperSegment

PREFIX = "faster-whisper-"
SAMPLE_RATE = 16000
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VOCABULARY_FILES = ("vocabulary.txt", "vocabulary.json")
"""CTranslate2 reads either; older conversions have the text file, newer ones the JSON."""
MULTILINGUAL_VOCABULARY = 51865
"""CTranslate2 treats a Whisper model as multilingual when its vocabulary has at least this many
tokens (English-only models have one fewer); we decide the same way without loading it."""
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PULL_HINT = "voxserve models pull faster-whisper-base"

log = logging.getLogger(__name__)


class FasterWhisperEngine:
    """Speech-to-text with one faster-whisper model folder.

    Args:
        model_dir: ``.../faster-whisper-<size>``; the folder name gives the engine name.
        cpu_threads: CTranslate2 intra-op threads (0: its default).
        beam_size: beam search width (faster-whisper's default is 5).
        vad_filter: skip non-speech with the bundled Silero VAD before decoding.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when CTranslate2 sees a GPU).
        compute_type: CTranslate2 compute type instead of the device's default (``int8`` on
            the CPU, ``float16`` on CUDA).
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        cpu_threads: int = 0,
        beam_size: int = 5,
        vad_filter: bool = True,
        device: Device = "cpu",
        compute_type: str | None = None,
    ) -> None:
        if not model_dir.name.startswith(PREFIX) or model_dir.name == PREFIX:
            raise ValueError(f"a faster-whisper model folder is named {PREFIX}<size>")
        self.model_dir = model_dir
        self.name = model_dir.name
        self.version = f"{importlib.metadata.version('faster-whisper')}/{self.size}"
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.device: Device = device
        self.compute_type = compute_type
        self.placement: DeviceChoice | None = None
        """Where the model loaded (device and compute type); None until it has."""
        self._model: WhisperModel | None = None
        self._languages: tuple[str, ...] | None = None

    @property
    def size(self) -> str:
        """The model size from the folder name (``base``, ``tiny.en``, ``large-v3``)."""
        return self.name.removeprefix(PREFIX)

    @classmethod
    def discover(cls, models_dir: Path, **kwargs: Any) -> list[FasterWhisperEngine]:
        """One engine per complete ``faster-whisper-*`` folder in ``models_dir``, by name."""
        if not models_dir.is_dir():
            return []
        folders = sorted(p for p in models_dir.glob(f"{PREFIX}*") if p.name != PREFIX)
        return [cls(path, **kwargs) for path in folders if _is_complete(path)]

    def capabilities(self) -> STTCapabilities:
        languages = self._model_languages()
        return STTCapabilities(
            languages=languages,
            language_detection=len(languages) > 1,
            word_timestamps=True,
            hotwords=True,
            diarization=False,
            translation=len(languages) > 1,
            sample_rate=SAMPLE_RATE,
            max_concurrency=1,
        )

    def load(self) -> None:
        missing = _missing_files(self.model_dir)
        if missing:
            raise EngineFailure(
                f"{self.name} is missing {', '.join(missing)}; "
                f"run: voxserve models pull {self.name}"
            )
        # Imported here so that discovering engines stays cheap for a server that never uses them.
        from faster_whisper import WhisperModel

        choice = choose_device(self.device, self.compute_type)
        self._model, self.placement = self._open(WhisperModel, choice)
        _add_checkpoints(self._model)

    def _open(
        self, model_class: type[WhisperModel], choice: DeviceChoice
    ) -> tuple[WhisperModel, DeviceChoice]:
        """Load on ``choice``, or on its CPU fallback when CUDA fails under ``auto``."""
        try:
            model = model_class(
                str(self.model_dir),
                device=choice.device,
                compute_type=choice.compute_type,
                cpu_threads=self.cpu_threads,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            if choice.fallback is None:
                where = f"on {choice.device} ({choice.compute_type})"
                raise EngineFailure(f"{self.name} could not load its weights {where}") from exc
            log.warning("%s could not load on CUDA (%s); using the CPU", self.name, exc)
            return self._open(model_class, choice.fallback)
        return model, choice

    def unload(self) -> None:
        self._model = None
        self.placement = None

    def open_stream(self, options: TranscriptionOptions) -> STTStream:
        """A realtime stream (LocalAgreement over greedy decodes: beam 1, no temperature
        fallback, no conditioning on previous text; the stream gives its own prompt)."""
        return AgreementStream(self._transcribe_greedy, SAMPLE_RATE, options)

    def _transcribe_greedy(
        self, audio: AudioClip, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        return self.transcribe(audio, options, greedy=True)

    def transcribe(
        self, audio: AudioClip, options: TranscriptionOptions, *, greedy: bool = False
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Detect the language (unless given) now; decode segments as they are iterated.

        ``greedy``: the fast decode realtime steps use (beam 1, one temperature, no
        conditioning on the previous window's text).

        Raises:
            Unsupported: a language the model does not know (English-only models: any but en).
            EngineFailure: the engine is not loaded, or CTranslate2 failed.
            ValueError: ``audio`` is not at 16 kHz (the caller resamples).
        """
        if audio.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{self.name} needs {SAMPLE_RATE} Hz audio, got {audio.sample_rate}")
        language = self._check_language(options.language)
        if options.task == "translate" and len(self._model_languages()) < 2:
            raise Unsupported(
                f"{self.name} is English-only and cannot translate; use a multilingual model: "
                f"{PULL_HINT}",
                field="task",
            )
        model = self._model
        if model is None:
            raise EngineFailure(f"{self.name} is not loaded")
        if len(audio.samples) == 0:
            fixed = language or self._only_language()
            return TranscriptionInfo(fixed, 1.0 if fixed else None, 0.0), iter(())
        try:
            segments, info = model.transcribe(
                audio.samples, **self._decode_options(options, language, greedy)
            )
        except DecodeAbandoned:
            raise
        except Exception as exc:  # CTranslate2, the VAD and the tokenizer raise assorted types
            raise EngineFailure(f"{self.name} failed to transcribe the audio") from exc
        return (
            TranscriptionInfo(info.language, info.language_probability, info.duration),
            self._segments(segments, options.word_timestamps),
        )

    def _decode_options(
        self, options: TranscriptionOptions, language: str | None, greedy: bool = False
    ) -> dict[str, Any]:
        if greedy:
            return {
                **self._decode_options(options, language),
                "temperature": 0.0,
                "beam_size": 1,
                "condition_on_previous_text": False,
            }
        return {
            "language": language,
            "temperature": _temperatures(options.temperature),
            "word_timestamps": options.word_timestamps,
            "hotwords": ", ".join(options.hotwords) or None,
            "initial_prompt": options.prompt or None,
            "task": options.task,
            "vad_filter": self.vad_filter,
            "beam_size": self.beam_size,
        }

    def _segments(
        self, segments: Iterable[WhisperSegment], word_timestamps: bool
    ) -> Iterator[Segment]:
        # Decoding happens while this generator is pulled, so errors surface here, not in
        # transcribe(): they must be translated here too.
        try:
            for segment in segments:
                yield _convert_segment(segment, word_timestamps)
        except DecodeAbandoned:
            raise
        except Exception as exc:
            raise EngineFailure(f"{self.name} failed while decoding the audio") from exc

    def _check_language(self, language: str | None) -> str | None:
        if language is None:
            return None
        code = language.lower()
        languages = self._model_languages()
        if code in languages:
            return code
        if languages == ("en",):
            raise Unsupported(
                f"{self.name} transcribes English only; for '{language}' use a multilingual "
                f"model: {PULL_HINT}",
                field="language",
            )
        raise Unsupported(f"{self.name} does not know the language '{language}'", field="language")

    def _only_language(self) -> str | None:
        languages = self._model_languages()
        return languages[0] if len(languages) == 1 else None

    def _model_languages(self) -> tuple[str, ...]:
        if self._languages is None:
            self._languages = _read_languages(self.model_dir)
        return self._languages


CHECKPOINTED = ("encode", "generate_with_fallback", "add_word_timestamps")
"""The stages of a faster-whisper decode (one encoder pass, one generation, one alignment per
30 s window) before which an abandoned realtime step stops."""


def _add_checkpoints(model: WhisperModel) -> None:
    """A checkpoint before each stage (faster-whisper calls them as methods of the model, so an
    attribute of the instance stands in for each)."""
    for name in CHECKPOINTED:
        stage = getattr(model, name, None)
        if stage is not None:  # a faster-whisper without the stage: no checkpoint there
            setattr(model, name, _checkpointed(stage))


def _checkpointed(stage: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(stage)
    def run(*args: Any, **kwargs: Any) -> Any:
        checkpoint()
        return stage(*args, **kwargs)

    return run


def _missing_files(path: Path) -> list[str]:
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in VOCABULARY_FILES):
        missing.append(VOCABULARY_FILES[0])
    return missing


def _is_complete(path: Path) -> bool:
    return path.is_dir() and not _missing_files(path)


def _read_vocabulary(model_dir: Path) -> list[str]:
    json_path = model_dir / "vocabulary.json"
    if json_path.is_file():
        tokens: list[str] = json.loads(json_path.read_text(encoding="utf-8"))
        return tokens
    text = (model_dir / "vocabulary.txt").read_text(encoding="utf-8")
    return text.removesuffix("\n").split("\n")


def _read_languages(model_dir: Path) -> tuple[str, ...]:
    """The model's language codes, from its config's language token ids."""
    try:
        vocabulary = _read_vocabulary(model_dir)
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EngineFailure(f"{model_dir.name} has no readable vocabulary or config") from exc
    if len(vocabulary) < MULTILINGUAL_VOCABULARY:
        return ("en",)
    tokens = (vocabulary[i] for i in config.get("lang_ids", []) if i < len(vocabulary))
    return tuple(t[2:-2] for t in tokens if t.startswith("<|") and t.endswith("|>"))


def _temperatures(temperature: float | None) -> tuple[float, ...]:
    """OpenAI's rule: 0 (or unset) lets Whisper raise the temperature when decoding fails its
    quality checks; any other value is used as given."""
    if not temperature:
        return FALLBACK_TEMPERATURES
    return (temperature,)


def _convert_segment(segment: WhisperSegment, word_timestamps: bool) -> Segment:
    words = None
    if word_timestamps and segment.words is not None:
        words = tuple(
            Word(w.word, _seconds(w.start), _seconds(w.end), float(w.probability))
            for w in segment.words
        )
    return Segment(segment.text.strip(), _seconds(segment.start), _seconds(segment.end), words)


def _seconds(value: float) -> float:
    # faster-whisper hands back numpy floats after VAD; callers expect plain, tidy floats.
    return round(float(value), 3)
