"""Pocket TTS (Kyutai): a small streaming TTS on the CPU with zero-shot voice cloning.

An optional extra (``pip install 'voxserve[pocket-tts]'``, which brings torch). The package is
imported only when the model loads, so importing this module never needs torch.

Model folder, ``<models_dir>/pocket-tts/``::

    config.yaml          a pocket-tts model config (copy one from pocket_tts/config/), whose
                         ``weights_path`` and ``flow_lm.lookup_table.tokenizer_path`` name local
                         files; relative paths are read from this folder
    model.safetensors    the weights ``weights_path`` names (kyutai/pocket-tts, gated: the
                         voice-cloning weights, at ``languages/<language>/model.safetensors``)
    tokenizer.json       the tokenizer ``tokenizer_path`` names (or a sentencepiece ``.model``)
    voices/<name>.safetensors
                         optional preset voices: voice states written by
                         ``pocket_tts.export_model_state`` (``pocket-tts export-voice``), such as
                         the built-in ``embeddings/<name>.safetensors`` of
                         kyutai/pocket-tts-without-voice-cloning

Nothing is ever downloaded: a config that names an ``hf://`` or ``http(s)://`` file is refused.
A config without weights builds the model with random weights, which only tests may allow
(``allow_random_weights``): it speaks noise.

Speed: Pocket TTS has no pace control. ``speed`` other than 1.0 is applied afterwards by a
pitch-preserving time stretch (WSOLA) over each request's whole text, so such requests come out
in one chunk instead of streaming frame by frame.

Importing pocket-tts sets torch to one thread, process-wide (its authors' choice for this model).

The model folder is read in ``pocket_tts_folder``; voice states are checked in ``pocket_tts_state``.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from voxserve.audio.stretch import time_stretch
from voxserve.audio.types import AudioClip, Samples
from voxserve.engines.languages import primary_language
from voxserve.engines.pocket_tts_folder import (
    CONFIG_FILE,
    FOLDER,
    VOICES_FOLDER,
    ModelFolder,
    config_value,
    model_version,
    preset_voices,
)
from voxserve.engines.pocket_tts_state import check_can_clone, import_state, reference_samples
from voxserve.engines.protocol import SynthesisRequest, TTSCapabilities
from voxserve.errors import EngineFailure, Unsupported, VoiceNotFound

if TYPE_CHECKING:
    from pocket_tts import TTSModel

    from voxserve.engines.pocket_tts_state import ModelState

log = logging.getLogger(__name__)

INSTALL_HINT = "Pocket TTS needs: pip install 'voxserve[pocket-tts]'"
NO_VOICE = "pocket-tts needs a voice: a preset or a cloned voice"
_CACHED_STATES = 8
"""Imported voice states kept in memory: the speech service sends one request per sentence."""


class PocketTTSEngine:
    """A ``TTSEngine`` running one Pocket TTS model folder.

    The model is not thread-safe: one stream (or clone) at a time per instance, hence
    ``max_concurrency`` 1.

    Args:
        config_path: the model folder's ``config.yaml`` (layout in the module docstring).
        language: ISO-639-1 code the model speaks (pocket-tts configs do not say).
        allow_random_weights: accept a config without weights (tests only: it speaks noise).
    """

    name = "pocket-tts"

    def __init__(
        self, config_path: Path, *, language: str = "en", allow_random_weights: bool = False
    ) -> None:
        self.folder = ModelFolder.read(config_path)
        self.language = language
        self.allow_random_weights = allow_random_weights
        self.version = model_version(self.folder)
        self._voices = preset_voices(config_path.parent / VOICES_FOLDER, language)
        self._model: TTSModel | None = None
        self._states: collections.OrderedDict[str, ModelState] = collections.OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def discover(
        cls, models_dir: Path, *, allow_random_weights: bool = False
    ) -> PocketTTSEngine | None:
        """The engine for ``models_dir/pocket-tts``, or None when the folder is absent or
        unusable, or the pocket-tts package is not installed."""
        config_path = models_dir / FOLDER / CONFIG_FILE
        if not config_path.is_file():
            return None
        if importlib.util.find_spec("pocket_tts") is None:
            log.warning("found %s but pocket-tts is not installed. %s", config_path, INSTALL_HINT)
            return None
        try:
            engine = cls(config_path, allow_random_weights=allow_random_weights)
        except ValueError as exc:
            log.warning("skipping Pocket TTS: %s", exc)
            return None
        problem = engine.problem()
        if problem is not None:
            log.warning("skipping Pocket TTS in %s: %s", models_dir, problem)
            return None
        return engine

    def problem(self) -> str | None:
        """Why ``load`` would refuse this model folder, or None when it is usable."""
        if self.folder.problem is not None:
            return self.folder.problem
        if not self.folder.has_weights and not self.allow_random_weights:
            return (
                f"{FOLDER}/{self.folder.config_path.name} names no weights: put model.safetensors "
                f"(kyutai/pocket-tts) in the models folder's {FOLDER}/ and set "
                "weights_path: model.safetensors in the config"
            )
        return None

    def capabilities(self) -> TTSCapabilities:
        return TTSCapabilities(
            sample_rate=int(config_value(self.folder.config, ("mimi", "sample_rate")) or 24000),
            voices=tuple(voice for voice, _ in self._voices.values()),
            languages=(self.language,),
            cloning=True,
            max_concurrency=1,
        )

    def load(self) -> None:
        try:
            import pocket_tts
        except ImportError as exc:
            raise Unsupported(INSTALL_HINT) from exc
        problem = self.problem()
        if problem is not None:
            raise Unsupported(problem)
        with self._lock:
            if self._model is None:
                self._model = self._build(pocket_tts.TTSModel)

    def unload(self) -> None:
        with self._lock:
            self._model = None
            self._states.clear()

    def synthesize(self, request: SynthesisRequest) -> Iterator[Samples]:
        model = self._loaded()
        if request.language is not None and primary_language(request.language) != self.language:
            raise Unsupported(f"This Pocket TTS model speaks '{self.language}' only.")
        state = self._state_for(model, request)
        if not request.text.strip():
            return
        chunks = _stream(model, state, request.text)
        if request.speed == 1.0:
            yield from chunks
            return
        whole = np.concatenate([np.zeros(0, np.float32), *chunks])
        yield time_stretch(whole, request.speed, model.sample_rate)

    def clone_voice(self, reference: AudioClip) -> bytes:
        import torch
        from pocket_tts import export_model_state

        model = self._loaded()
        check_can_clone(model)
        samples = reference_samples(reference, model.sample_rate)
        state = model.get_state_for_audio_prompt(torch.from_numpy(samples)[None])
        with tempfile.TemporaryDirectory(prefix="voxserve-pocket-") as tmp:
            path = Path(tmp) / "voice.safetensors"
            export_model_state(state, path)
            return path.read_bytes()

    # ------------------------------------------------------------------ internals

    def _build(self, tts_model: type[TTSModel]) -> TTSModel:
        with tempfile.TemporaryDirectory(prefix="voxserve-pocket-") as tmp:
            # Relative paths in the config are resolved against its folder, not the CWD.
            resolved = Path(tmp) / "config.yaml"
            resolved.write_text(yaml.safe_dump(self.folder.config), encoding="utf-8")
            model = tts_model.load_model(config=resolved)
        if not self.folder.has_weights:
            log.warning(
                "POCKET TTS IS RUNNING WITH RANDOM WEIGHTS (%s has no weights_path): it speaks "
                "noise. Only tests should allow this.",
                self.folder.config_path,
            )
            import torch

            with torch.no_grad():
                # The loader leaves the speaker projection at zeros for the weights to fill;
                # random, so that cloned voices make a difference even without weights.
                model.flow_lm.speaker_proj_weight.normal_(0.0, 0.02)
        return model

    def _loaded(self) -> TTSModel:
        model = self._model
        if model is None:
            raise EngineFailure("The pocket-tts engine is not loaded.")
        return model

    def _state_for(self, model: TTSModel, request: SynthesisRequest) -> ModelState:
        if request.voice_state is not None:
            key = "state:" + hashlib.sha256(request.voice_state).hexdigest()
            return self._cached(key, lambda: import_state(model, request.voice_state or b""))
        if request.voice is not None:
            if request.voice not in self._voices:
                raise VoiceNotFound(f"{self.name}:{request.voice}")
            voice_id = request.voice
        elif self._voices:
            voice_id = next(iter(self._voices))
        else:
            raise Unsupported(NO_VOICE)
        path = self._voices[voice_id][1]
        return self._cached("preset:" + voice_id, lambda: import_state(model, path.read_bytes()))

    def _cached(self, key: str, make: Callable[[], ModelState]) -> ModelState:
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
                return state
        state = make()
        with self._lock:
            self._states[key] = state
            while len(self._states) > _CACHED_STATES:
                self._states.popitem(last=False)
        return state


def _stream(model: TTSModel, state: ModelState, text: str) -> Iterator[Samples]:
    """Pocket's stream as float32 arrays; closing it stops generation.

    On close, the stop event ends generation after the current frame, and the rest of the stream
    (frames already queued) is drained so that pocket's decoder thread has finished before we
    return: the caller then rightly believes the model free.
    """
    stop = threading.Event()
    stream = model.generate_audio_stream(state, text, stop=stop)
    try:
        for chunk in stream:
            # The decoder's output is not bounded; encoders expect [-1, 1].
            yield np.clip(chunk.numpy(), -1.0, 1.0).astype(np.float32, copy=False)
    finally:
        stop.set()
        try:
            for _ in stream:
                pass
        except Exception:
            # Nobody is listening any more; the error must not hide why the stream closed.
            log.exception("pocket-tts failed while stopping")
