"""Piper: fast neural voices on the CPU (VITS models run with ONNX Runtime).

Every voice in ``<models_dir>/piper/`` is served: ``<voice>.onnx`` with its ``<voice>.onnx.json``
config, named as in rhasspy/piper-voices (``en_US-joe-medium``). Voices load on first use and
speak sentence by sentence: each sentence's audio is handed out as soon as it is made.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxserve.audio.resample import resample
from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.espeak import CLONING_HINT
from voxserve.engines.languages import primary_language
from voxserve.engines.protocol import Gender, PresetVoice, SynthesisRequest, TTSCapabilities
from voxserve.errors import Unsupported, VoiceNotFound

if TYPE_CHECKING:
    from piper import PiperVoice

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
"""Every voice speaks at this rate: medium and high voices are made at it, low ones are
resampled, so one engine has one rate whatever voices the folder holds."""


@dataclass(frozen=True)
class PiperVoiceFiles:
    """One voice on disk with what its config says about it."""

    voice: PresetVoice
    model: Path
    config: dict[str, Any]

    @property
    def sample_rate(self) -> int:
        return int(self.config["audio"]["sample_rate"])

    @property
    def length_scale(self) -> float:
        return float(self.config.get("inference", {}).get("length_scale", 1.0))


class PiperEngine:
    """A ``TTSEngine`` serving a folder of Piper voices; voice ids are the file stems."""

    name = "piper"
    version = "1"

    def __init__(self, voices: Sequence[PiperVoiceFiles], *, threads: int | None = None) -> None:
        """
        Args:
            voices: the voices to serve (``discover`` finds them); the first is the default.
            threads: ONNX Runtime threads per synthesis; default the CPU count, at most 4
                (more gives little for models this small).
        """
        if not voices:
            raise ValueError("PiperEngine needs at least one voice")
        self._files = {files.voice.id: files for files in voices}
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._loaded: dict[str, PiperVoice] = {}
        """Voices by id, filled on first use of each."""
        self._lock = threading.Lock()

    @classmethod
    def discover(cls, models_dir: Path) -> PiperEngine | None:
        """The engine for every voice in ``models_dir/piper``, or None when there is none."""
        folder = models_dir / "piper"
        if not folder.is_dir():
            return None
        voices = []
        for model in sorted(folder.glob("*.onnx")):
            files = _read_voice(model)
            if files is not None:
                voices.append(files)
        return cls(voices) if voices else None

    def capabilities(self) -> TTSCapabilities:
        voices = tuple(files.voice for files in self._files.values())
        languages = sorted({lang for voice in voices for lang in voice.languages})
        return TTSCapabilities(
            sample_rate=SAMPLE_RATE,
            voices=voices,
            languages=tuple(languages),
            cloning=False,
            max_concurrency=1,
        )

    def load(self) -> None:
        # Voices load one by one on first use: a folder may hold many, most never asked for.
        pass

    def unload(self) -> None:
        with self._lock:
            self._loaded.clear()

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        from piper import SynthesisConfig

        if request.voice_state is not None:
            raise Unsupported(CLONING_HINT)
        files = self._pick(request)
        if not request.text.strip():
            return
        voice = self._voice(files)
        config = SynthesisConfig(length_scale=files.length_scale / request.speed)
        for chunk in voice.synthesize(request.text, syn_config=config):
            yield _to_engine_rate(chunk.audio_float_array, files.sample_rate)

    def clone_voice(self, reference: AudioClip) -> bytes:
        raise Unsupported(CLONING_HINT)

    def _pick(self, request: SynthesisRequest) -> PiperVoiceFiles:
        if request.voice is not None:
            files = self._files.get(request.voice)
            if files is None:
                raise VoiceNotFound(f"piper:{request.voice}")
            return files
        candidates = list(self._files.values())
        if request.language is not None:
            wanted = primary_language(request.language)
            candidates = [f for f in candidates if wanted in f.voice.languages]
            if not candidates:
                raise Unsupported(
                    f"No Piper voice speaks '{request.language}': add one to the models folder."
                )
        return candidates[0]

    def _voice(self, files: PiperVoiceFiles) -> PiperVoice:
        with self._lock:
            voice = self._loaded.get(files.voice.id)
            if voice is None:
                voice = self._loaded[files.voice.id] = self._open(files)
            return voice

    def _open(self, files: PiperVoiceFiles) -> PiperVoice:
        import onnxruntime
        from piper import PiperConfig, PiperVoice

        log.info("loading Piper voice %s", files.voice.id)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(files.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return PiperVoice(
            session=session,
            config=PiperConfig.from_dict(files.config),
            download_dir=files.model.parent,
        )


def _to_engine_rate(audio: np.ndarray[Any, Any], rate: int) -> Samples:
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if rate != SAMPLE_RATE:
        samples = resample(samples, rate, SAMPLE_RATE)
    # Piper normalises each sentence to full scale; resampling may overshoot it slightly.
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def _read_voice(model: Path) -> PiperVoiceFiles | None:
    config_path = model.with_name(model.name + ".json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["audio"]["sample_rate"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("skipping Piper voice %s: unreadable config %s (%s)", model, config_path, exc)
        return None
    voice_id = model.stem
    return PiperVoiceFiles(
        voice=PresetVoice(
            id=voice_id,
            name=_display_name(voice_id),
            languages=(_language(voice_id, config),),
            gender=_gender(voice_id, config),
        ),
        model=model,
        config=config,
    )


def _language(voice_id: str, config: dict[str, Any]) -> str:
    code = (config.get("language") or {}).get("code") or (config.get("espeak") or {}).get("voice")
    return primary_language(str(code or voice_id.split("-")[0]))


def _gender(voice_id: str, config: dict[str, Any]) -> Gender | None:
    """From a ``gender`` config key when there is one, else from the name (``hfc_female``)."""
    stated = str(config.get("gender") or "").lower()
    if stated in ("female", "male", "neutral"):
        return stated  # type: ignore[return-value]
    words = voice_id.lower().replace("-", "_").split("_")
    if "female" in words:
        return "female"
    if "male" in words:
        return "male"
    return None


def _display_name(voice_id: str) -> str:
    """``en_US-joe-medium`` -> ``Joe (en_US, medium)``."""
    parts = voice_id.split("-")
    if len(parts) != 3:
        return voice_id
    locale, speaker, quality = parts
    return f"{speaker.replace('_', ' ').title()} ({locale}, {quality})"
