"""Synthetic audio for tests that need a valid clip but not speech."""

from __future__ import annotations

import io
import wave

import numpy as np


def tone_wav(
    seconds: float = 3.0, rate: int = 16000, freq: float = 220.0, amp: float = 0.3
) -> bytes:
    """A 16-bit mono WAV of a tone with a little vibrato (so it is not perfectly stationary)."""
    t = np.arange(int(seconds * rate)) / rate
    signal = amp * np.sin(2 * np.pi * freq * t + 2 * np.sin(2 * np.pi * 3 * t))
    return pcm16_wav(signal, rate)


def silence_wav(seconds: float = 3.0, rate: int = 16000) -> bytes:
    return pcm16_wav(np.zeros(int(seconds * rate)), rate)


def pcm16_wav(signal: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()
