"""Whole-file and streaming encoders: every format decodes back (with PyAV) to the same tone."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tests.unit.audio.signals import dominant_frequency, pyav_decode, tone
from voxserve.audio.decode import decode
from voxserve.audio.encode import content_type, encode, make_stream_encoder
from voxserve.audio.types import AUDIO_FORMATS, AudioFormat
from voxserve.errors import ValidationFailed

RATE = 24000
FILE_FORMATS: tuple[AudioFormat, ...] = ("wav", "mp3", "flac", "opus", "aac")
# Extra decoded audio a codec may add: encoder delay plus padding to whole frames
# (MP3 frames are 576/1152 samples, AAC 1024 plus 1024 priming that ADTS cannot signal).
SLACK_SAMPLES = {"wav": 0, "flac": 0, "opus": 0, "mp3": 2 * 1152, "aac": 2 * 1024}
UNEVEN_CHUNKS = (1, 37, 4800, 0, 20000, 3, 2, 1, 0, 9000, 480)


def assert_duration(fmt: str, decoded: float, expected: float, rate: int) -> None:
    rounding = 0.002  # resampling inside the encoder and one-sample rounding
    assert decoded >= expected - rounding
    assert decoded <= expected + SLACK_SAMPLES[fmt] / rate + rounding


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_file_round_trip_keeps_duration_and_pitch(fmt: AudioFormat) -> None:
    data = encode(tone(1.5, RATE), RATE, fmt)

    decoded = pyav_decode(data)
    assert_duration(fmt, decoded.duration, 1.5, RATE)
    assert dominant_frequency(decoded.samples, decoded.rate) == pytest.approx(440, abs=3)
    assert float(np.max(np.abs(decoded.samples))) == pytest.approx(0.5, abs=0.1)
    assert decode(data).duration == pytest.approx(decoded.duration, abs=0.002)


def test_wav_is_16_bit_mono_with_exact_riff_sizes() -> None:
    data = encode(tone(0.5, RATE), RATE, "wav")

    riff, riff_size, wave, fmt_id, fmt_size = struct.unpack_from("<4sI4s4sI", data)
    audio_format, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, 20)
    data_id, data_size = struct.unpack_from("<4sI", data, 36)
    assert (riff, wave, fmt_id, data_id) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert (riff_size, data_size, fmt_size) == (len(data) - 8, len(data) - 44, 16)
    assert (audio_format, channels, rate, byte_rate, align, bits) == (1, 1, RATE, 2 * RATE, 2, 16)
    assert data_size == 2 * 12000


def test_raw_pcm_formats_are_float32_and_s16_little_endian_and_clipped() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.5, -2.0], dtype=np.float32)

    pcm = np.frombuffer(encode(samples, RATE, "pcm"), dtype="<f4")
    pcm16 = np.frombuffer(encode(samples, RATE, "pcm16"), dtype="<i2")

    np.testing.assert_array_equal(pcm, [0.0, 0.5, -0.5, 1.0, -1.0])
    np.testing.assert_array_equal(pcm16, [0, 16384, -16384, 32767, -32767])


def stream_pieces(fmt: AudioFormat, samples: np.ndarray, rate: int) -> list[bytes]:
    encoder = make_stream_encoder(fmt, rate)
    pieces, start = [], 0
    for size in UNEVEN_CHUNKS:
        pieces.append(encoder.encode(samples[start : start + size]))
        start += size
    pieces.append(encoder.finish())
    return pieces


@pytest.mark.parametrize(
    ("fmt", "rate"),
    [(fmt, RATE) for fmt in FILE_FORMATS]
    + [("opus", 22050), ("opus", 44100), ("mp3", 22050), ("aac", 16000), ("wav", 16000)],
)
def test_stream_of_uneven_chunks_is_one_valid_file(fmt: AudioFormat, rate: int) -> None:
    samples = tone(sum(UNEVEN_CHUNKS) / rate, rate)

    pieces = stream_pieces(fmt, samples, rate)

    assert sum(len(p) for p in pieces[:-1]) > 0, "nothing was sent before finish()"
    decoded = pyav_decode(b"".join(pieces))
    assert_duration(fmt, decoded.duration, len(samples) / rate, rate)
    assert dominant_frequency(decoded.samples, decoded.rate) == pytest.approx(440, abs=3)


def test_streamed_wav_declares_unknown_sizes_and_decodes_fully() -> None:
    samples = tone(sum(UNEVEN_CHUNKS) / RATE, RATE)
    data = b"".join(stream_pieces("wav", samples, RATE))

    assert struct.unpack_from("<I", data, 4)[0] == 0xFFFFFFFF
    assert struct.unpack_from("<I", data, 40)[0] == 0xFFFFFFFF
    decoded = pyav_decode(data)
    assert len(decoded.samples) == len(samples)
    np.testing.assert_allclose(decoded.samples, samples, atol=1e-4)


@pytest.mark.parametrize("fmt", ["pcm", "pcm16"])
def test_streamed_raw_pcm_equals_whole_encoding(fmt: AudioFormat) -> None:
    samples = tone(sum(UNEVEN_CHUNKS) / RATE, RATE)

    assert b"".join(stream_pieces(fmt, samples, RATE)) == encode(samples, RATE, fmt)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "opus"])
def test_stream_with_no_audio_is_still_a_file_with_no_samples(fmt: AudioFormat) -> None:
    encoder = make_stream_encoder(fmt, RATE)

    data = encoder.encode(np.zeros(0, dtype=np.float32)) + encoder.finish()

    assert data  # at least the container header
    with pytest.raises(ValidationFailed):
        decode(data)


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_stream_encoder_refuses_use_after_finish(fmt: AudioFormat) -> None:
    encoder = make_stream_encoder(fmt, RATE)
    encoder.encode(tone(0.1, RATE))
    encoder.finish()

    with pytest.raises(RuntimeError):
        encoder.encode(tone(0.1, RATE))
    with pytest.raises(RuntimeError):
        encoder.finish()


def test_content_types() -> None:
    assert content_type("opus") == "audio/ogg"
    assert content_type("mp3") == "audio/mpeg"
    assert {content_type(fmt) for fmt in AUDIO_FORMATS} <= {
        "audio/wav",
        "audio/pcm",
        "audio/mpeg",
        "audio/flac",
        "audio/ogg",
        "audio/aac",
    }


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        make_stream_encoder("ogg", RATE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample rate"):
        encode(tone(0.1, RATE), 0, "wav")
