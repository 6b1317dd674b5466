"""Pocket TTS voice states: the reference audio a clone starts from, and importing stored states
(the safetensors that ``clone_voice`` exports) checked against the loaded model's layout.

torch and pocket-tts are imported inside the functions that need them, never at module import.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxserve.audio.resample import resample
from voxserve.audio.types import AudioClip, Samples
from voxserve.errors import InvalidRequest, Unsupported

if TYPE_CHECKING:
    from pocket_tts import TTSModel

    ModelState = dict[str, dict[str, Any]]

MAX_REFERENCE_SECONDS = 30.0
"""Longer references are cut, as pocket-tts's own ``truncate`` does: the voice state's KV cache
grows with the reference, and 30 s is plenty to catch a voice."""


def import_state(model: TTSModel, data: bytes) -> ModelState:
    """A voice state from ``clone_voice`` bytes, checked against the model's layout."""
    with tempfile.TemporaryDirectory(prefix="voxserve-pocket-") as tmp:
        path = Path(tmp) / "voice.safetensors"
        path.write_bytes(data)
        try:
            state: ModelState = model.get_state_for_audio_prompt(path)
        except Exception as exc:
            raise InvalidRequest("The voice state is not a pocket-tts voice state.") from exc
    if not _fits(model, state):
        raise InvalidRequest(
            "The voice state was made by another Pocket TTS model: clone the voice again."
        )
    return state


def _fits(model: TTSModel, state: ModelState) -> bool:
    """Same attention layers with the same cache widths (pocket-tts does not check: a foreign
    state fails deep inside generation, or worse, runs)."""
    from pocket_tts.modules.stateful_module import init_states

    expected = init_states(model.flow_lm, batch_size=1, sequence_length=1)
    if set(state) != set(expected):
        return False
    for module, tensors in expected.items():
        got = state[module]
        if set(got) != set(tensors):
            return False
        if "cache" in tensors:
            want, have = tensors["cache"].shape, got["cache"].shape
            if len(have) != len(want) or have[:2] != want[:2] or have[3:] != want[3:]:
                return False
    return True


def check_can_clone(model: TTSModel) -> None:
    """Raises Unsupported when the loaded weights cannot clone voices."""
    # A zero speaker projection (the loader's init, which weights without it keep) maps every
    # reference to the same conditioning: a cloned state would carry nothing of the voice.
    if not model.has_voice_cloning or not bool(model.flow_lm.speaker_proj_weight.any()):
        raise Unsupported(
            "These Pocket TTS weights cannot clone voices: use the voice-cloning weights "
            "(kyutai/pocket-tts), or a preset voice."
        )


def reference_samples(reference: AudioClip, rate: int) -> Samples:
    """The reference as contiguous mono float32 at the model's rate, cut to
    ``MAX_REFERENCE_SECONDS``; raises InvalidRequest when it is too short."""
    samples = np.asarray(reference.samples, dtype=np.float32).reshape(-1)
    if reference.sample_rate != rate:
        samples = resample(samples, reference.sample_rate, rate)
    samples = samples[: int(MAX_REFERENCE_SECONDS * rate)]
    if len(samples) < rate // 10:
        raise InvalidRequest("The reference clip is too short to clone a voice.")
    return np.ascontiguousarray(samples)
