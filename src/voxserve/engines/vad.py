"""Voice-activity detection with Silero VAD v6, streaming, on CPU.

The ONNX weights ship inside the faster-whisper wheel (``faster_whisper/assets``), so nothing is
downloaded. One ``SileroVAD`` (the ONNX session, thread-safe) serves every session; each session
keeps its own recurrent state in a ``VADStream``. Input: mono float32 at 16 kHz, any chunk size;
output: one speech probability per 32 ms frame.
"""

from __future__ import annotations

import importlib.resources
import threading
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.audio.types import Samples
from voxserve.errors import EngineFailure

SAMPLE_RATE = 16000
FRAME = 512
"""Samples per decision (32 ms at 16 kHz), what the model was trained on."""
CONTEXT = 64
"""Samples of the previous frame the model sees before each frame."""
FRAME_SECONDS = FRAME / SAMPLE_RATE


def bundled_model_path() -> Path:
    """The Silero VAD v6 ONNX file that faster-whisper ships."""
    return Path(str(importlib.resources.files("faster_whisper") / "assets" / "silero_vad_v6.onnx"))


class SileroVAD:
    """The shared model. ``stream()`` makes a per-session detector state."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path or bundled_model_path()
        self._session: Any = None
        self._lock = threading.Lock()

    def stream(self) -> VADStream:
        return VADStream(self)

    def run(
        self, frames: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities of ``frames`` (n x (CONTEXT + FRAME)), and the state after them."""
        probabilities, h, c = self._loaded().run(None, {"input": frames, "h": h, "c": c})
        return probabilities.reshape(-1), h, c

    def _loaded(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = _open_session(self._path)
            return self._session


def _open_session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    try:
        return onnxruntime.InferenceSession(
            str(path), providers=["CPUExecutionProvider"], sess_options=options
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise EngineFailure(f"the voice-activity model could not be loaded from {path}") from exc


class VADStream:
    """One session's detector: feed audio, get a probability per complete frame.

    Invariant: ``_pending`` holds fewer than ``FRAME`` samples not yet judged.
    """

    def __init__(self, model: SileroVAD) -> None:
        self._model = model
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: Samples) -> list[float]:
        """Speech probabilities of the complete frames now available (may be none)."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        count = len(audio) // FRAME
        self._pending = audio[count * FRAME :]
        if count == 0:
            return []
        frames = audio[: count * FRAME].reshape(count, FRAME)
        previous = np.vstack([self._context[None, :], frames[:-1, -CONTEXT:]])
        batch = np.concatenate([previous, frames], axis=1)
        self._context = frames[-1, -CONTEXT:].copy()
        probabilities, self._h, self._c = self._model.run(batch, self._h, self._c)
        return [float(p) for p in probabilities]
