"""Raw PCM as realtime clients send it: the encodings Mistral's SDK lists (and OpenAI's
``audio/pcm``, ``audio/pcmu``, ``audio/pcma``), decoded to mono float32.

A chunk may end inside a sample (base64 messages are cut anywhere): ``PCMDecoder`` keeps the
odd bytes for the next chunk, and its resampler brings any input rate to the engine's.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from voxserve.audio.resample import StreamResampler
from voxserve.audio.types import Samples

PCMEncoding = Literal["pcm_s16le", "pcm_s32le", "pcm_f16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"]
PCM_ENCODINGS: tuple[PCMEncoding, ...] = get_args(PCMEncoding)

_DTYPES: dict[PCMEncoding, str] = {
    "pcm_s16le": "<i2",
    "pcm_s32le": "<i4",
    "pcm_f16le": "<f2",
    "pcm_f32le": "<f4",
    "pcm_mulaw": "u1",
    "pcm_alaw": "u1",
}
_SCALE: dict[PCMEncoding, float] = {"pcm_s16le": 32768.0, "pcm_s32le": 2147483648.0}


def _mulaw_table() -> Samples:
    """ITU-T G.711 mu-law: byte -> linear sample in [-1, 1]."""
    u = ~np.arange(256, dtype=np.uint8)
    sign = np.where(u & 0x80, -1.0, 1.0)
    exponent = (u >> 4) & 0x07
    mantissa = (u & 0x0F).astype(np.int32)
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (sign * magnitude / 32768.0).astype(np.float32)


def _alaw_table() -> Samples:
    """ITU-T G.711 A-law: byte -> linear sample in [-1, 1]."""
    a = np.arange(256, dtype=np.uint8) ^ 0x55
    sign = np.where(a & 0x80, 1.0, -1.0)
    exponent = ((a >> 4) & 0x07).astype(np.int32)
    mantissa = (a & 0x0F).astype(np.int32)
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return (sign * magnitude / 32768.0).astype(np.float32)


_TABLES: dict[PCMEncoding, Samples] = {"pcm_mulaw": _mulaw_table(), "pcm_alaw": _alaw_table()}


def sample_width(encoding: PCMEncoding) -> int:
    return np.dtype(_DTYPES[encoding]).itemsize


def decode_pcm(data: bytes, encoding: PCMEncoding) -> Samples:
    """Whole samples of ``data`` (its length must be a multiple of the sample width)."""
    raw = np.frombuffer(data, dtype=_DTYPES[encoding])
    if encoding in _TABLES:
        return _TABLES[encoding][raw]
    if encoding in _SCALE:
        return (raw / _SCALE[encoding]).astype(np.float32)
    return np.clip(raw.astype(np.float32), -1.0, 1.0)


class PCMDecoder:
    """Decodes a PCM byte stream, chunk by chunk, to float32 at ``to_rate``."""

    def __init__(self, encoding: PCMEncoding, from_rate: int, to_rate: int) -> None:
        self.encoding = encoding
        self.from_rate = from_rate
        self._width = sample_width(encoding)
        self._odd = b""
        self._resampler = StreamResampler(from_rate, to_rate)

    def decode(self, data: bytes) -> Samples:
        data = self._odd + data
        whole = len(data) - len(data) % self._width
        self._odd = data[whole:]
        return self._resampler.process(decode_pcm(data[:whole], self.encoding))

    def flush(self) -> Samples:
        """The resampler's tail (a trailing partial sample is dropped)."""
        self._odd = b""
        return self._resampler.flush()

    def seconds(self, data_bytes: int) -> float:
        """Input seconds that ``data_bytes`` of this encoding hold."""
        return data_bytes / self._width / self.from_rate
