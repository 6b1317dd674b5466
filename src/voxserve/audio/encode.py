"""Encode mono float32 audio as a whole file or as a stream of byte pieces.

Formats (see :data:`~voxserve.audio.types.AudioFormat`): ``wav`` (16-bit PCM), ``pcm`` (raw
float32 LE), ``pcm16`` (raw s16 LE), ``mp3``, ``flac``, ``opus`` (Ogg Opus) and ``aac`` (ADTS).

A stream encoder returns bytes as soon as the codec and muxer produce them; the concatenation
of all pieces is one valid file. Streamed WAV declares the unknown sizes 0xFFFFFFFF (as
Mistral's stream does; FFmpeg then reads to the end of the data). Streamed codec formats are
muxed to a non-seekable sink, so muxers write streamable headers and never seek back.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import av
import av.container
import numpy as np

from voxserve.audio.resample import StreamResampler, as_samples
from voxserve.audio.types import CONTENT_TYPES, AudioFormat, Samples

_UNKNOWN_SIZE = 0xFFFFFFFF


class StreamEncoder(Protocol):
    """Turns a stream of mono float32 chunks into the bytes of one file, piece by piece."""

    def encode(self, chunk: Samples) -> bytes:
        """Encode one chunk (any length, even empty).

        Returns:
            The bytes ready so far; may be empty while the codec buffers a frame.
        """
        ...

    def finish(self) -> bytes:
        """End the stream: flush the codec and write the trailer.

        Returns:
            The last bytes of the file. Encoding after ``finish`` raises ``RuntimeError``.
        """
        ...


def content_type(fmt: AudioFormat) -> str:
    """The HTTP Content-Type for ``fmt``."""
    return CONTENT_TYPES[fmt]


def encode(samples: Samples, sample_rate: int, fmt: AudioFormat) -> bytes:
    """Encode a whole clip as a complete file of format ``fmt``.

    Unlike streaming, codec formats are muxed to a seekable buffer, so muxers fill in the
    totals they only know at the end (FLAC sample count and MD5, the MP3 Xing/LAME frame).
    """
    _check_rate(sample_rate)
    samples = _prepare(samples)
    if fmt == "wav":
        return _wav_header(2 * len(samples), sample_rate) + _to_pcm16(samples)
    if fmt in _RAW_FORMATS:
        return _raw_bytes(samples, fmt)
    buffer = io.BytesIO()
    muxer = _CodecMuxer(_codec_spec(fmt), sample_rate, buffer)
    muxer.write(samples)
    muxer.close()
    return buffer.getvalue()


def make_stream_encoder(fmt: AudioFormat, sample_rate: int) -> StreamEncoder:
    """A new :class:`StreamEncoder` for ``fmt`` taking chunks at ``sample_rate`` Hz."""
    _check_rate(sample_rate)
    if fmt in _RAW_FORMATS:
        return RawStreamEncoder(fmt, sample_rate)
    return CodecStreamEncoder(fmt, sample_rate)


class RawStreamEncoder:
    """Streams ``wav`` (header first, sizes unknown), ``pcm`` or ``pcm16``."""

    def __init__(self, fmt: AudioFormat, sample_rate: int) -> None:
        if fmt not in _RAW_FORMATS:
            raise ValueError(f"not a raw audio format: {fmt!r}")
        _check_rate(sample_rate)
        self._fmt = fmt
        self._header = _wav_header(None, sample_rate) if fmt == "wav" else b""
        self._finished = False

    def encode(self, chunk: Samples) -> bytes:
        if self._finished:
            raise RuntimeError("encode() after finish()")
        data = _raw_bytes(_prepare(chunk), self._fmt)
        header, self._header = self._header, b""
        return header + data

    def finish(self) -> bytes:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        header, self._header = self._header, b""  # a stream with no audio is still a file
        return header


class CodecStreamEncoder:
    """Streams ``mp3``, ``flac``, ``opus`` or ``aac`` through PyAV's encoders and muxers."""

    def __init__(self, fmt: AudioFormat, sample_rate: int) -> None:
        _check_rate(sample_rate)
        self._sink = _DrainSink()
        self._muxer = _CodecMuxer(_codec_spec(fmt), sample_rate, self._sink)
        self._finished = False

    def encode(self, chunk: Samples) -> bytes:
        if self._finished:
            raise RuntimeError("encode() after finish()")
        self._muxer.write(_prepare(chunk))
        return self._sink.drain()

    def finish(self) -> bytes:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        self._muxer.close()
        return self._sink.drain()


@dataclass(frozen=True)
class _CodecSpec:
    muxer: str
    codec: str
    sample_format: str
    rates: tuple[int, ...] = ()
    """Sample rates the encoder accepts, ascending; empty means any."""
    bit_rate: int | None = None
    muxer_options: dict[str, str] = field(default_factory=dict)

    def rate_for(self, sample_rate: int) -> int:
        """The encoder rate: ``sample_rate`` if accepted, else the next higher accepted one."""
        if not self.rates or sample_rate in self.rates:
            return sample_rate
        return next((r for r in self.rates if r > sample_rate), self.rates[-1])


_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200)
_CODECS: dict[str, _CodecSpec] = {
    "mp3": _CodecSpec("mp3", "libmp3lame", "fltp", _MP3_RATES, 64_000),
    "flac": _CodecSpec("flac", "flac", "s16"),
    # libopus takes only these rates (it works at 48 kHz inside). 100 ms Ogg pages instead of
    # the default 1 s let a streamed response start promptly.
    "opus": _CodecSpec(
        "ogg",
        "libopus",
        "flt",
        (8000, 12000, 16000, 24000, 48000),
        48_000,
        {"page_duration": "100000"},
    ),
    "aac": _CodecSpec("adts", "aac", "fltp", _AAC_RATES, 64_000),
}
_RAW_FORMATS = ("wav", "pcm", "pcm16")


def _codec_spec(fmt: AudioFormat) -> _CodecSpec:
    try:
        return _CODECS[fmt]
    except KeyError:
        raise ValueError(f"unknown audio format: {fmt!r}") from None


class _CodecMuxer:
    """One PyAV output container with one mono audio stream, writing to ``file``."""

    def __init__(self, spec: _CodecSpec, sample_rate: int, file: object) -> None:
        self._rate = spec.rate_for(sample_rate)
        self._resampler = StreamResampler(sample_rate, self._rate)
        self._container = av.open(
            file, mode="w", format=spec.muxer, container_options=spec.muxer_options
        )
        stream = self._container.add_stream(spec.codec, rate=self._rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        stream.format = spec.sample_format
        if spec.bit_rate:
            stream.bit_rate = spec.bit_rate
        self._stream = stream
        self._time_base = Fraction(1, self._rate)
        self._pts = 0

    def write(self, samples: Samples) -> None:
        self._encode(self._resampler.process(samples))

    def close(self) -> None:
        self._encode(self._resampler.flush())
        self._container.start_encoding()  # writes the header even when no audio came
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def _encode(self, samples: Samples) -> None:
        if len(samples) == 0:
            return
        frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="flt", layout="mono")
        frame.sample_rate = self._rate
        frame.time_base = self._time_base
        frame.pts = self._pts
        self._pts += len(samples)
        # PyAV cuts the frames to the codec's frame size and converts the sample format.
        self._container.mux(self._stream.encode(frame))


class _DrainSink:
    """A write-only file object. Having no seek/tell makes it non-seekable for FFmpeg."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def write(self, data: bytes) -> int:
        self._pending += data
        return len(data)

    def drain(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data


def _check_rate(sample_rate: int) -> None:
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")


def _prepare(samples: Samples) -> Samples:
    return np.clip(as_samples(samples), -1.0, 1.0)


def _to_pcm16(samples: Samples) -> bytes:
    return np.round(samples * 32767.0).astype("<i2").tobytes()


def _raw_bytes(samples: Samples, fmt: AudioFormat) -> bytes:
    if fmt == "pcm":
        return samples.astype("<f4").tobytes()
    return _to_pcm16(samples)  # wav body and pcm16


def _wav_header(data_bytes: int | None, sample_rate: int) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit mono; ``None`` (or > 4 GiB) = unknown length."""
    if data_bytes is None or data_bytes + 36 > _UNKNOWN_SIZE:
        riff_size = data_size = _UNKNOWN_SIZE
    else:
        riff_size, data_size = 36 + data_bytes, data_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", riff_size, b"WAVE", b"fmt ", 16, 1, 1, sample_rate, 2 * sample_rate),
        *(2, 16, b"data", data_size),
    )
