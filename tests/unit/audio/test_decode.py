"""Decoding: real files, containers made by PyAV, streaming decode, and clean errors."""

from __future__ import annotations

import io
import json
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.unit.audio.signals import (
    dominant_frequency,
    shared_data_dir,
    tone,
    write_container,
)
from voxserve.audio.decode import (
    decode,
    decode_head,
    decode_path,
    iter_decode,
    measure_duration,
    probe_duration,
)
from voxserve.audio.encode import encode, make_stream_encoder
from voxserve.errors import ValidationFailed

RATE = 24000
DATA_DIR = shared_data_dir()
REAL_FILES = [
    "faster_whisper_tests/jfk.flac",
    "faster_whisper_tests/hotwords.mp3",
    "f5tts_examples/basic_ref_en.wav",
    "ljspeech/LJ001-0001.flac",
]


def manifest_durations() -> dict[str, float]:
    if DATA_DIR is None:
        return {}
    rows = json.loads((DATA_DIR / "manifest.json").read_text())
    return {row["file"]: row["duration"] for row in rows}


@pytest.mark.skipif(DATA_DIR is None, reason="shared speech data folder not found")
@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_decode_to_their_manifest_duration(name: str) -> None:
    assert DATA_DIR is not None
    path = DATA_DIR / name
    expected = manifest_durations()[name]

    native = decode_path(path)
    at_16k = decode(path.read_bytes(), sample_rate=16000)

    assert native.duration == pytest.approx(expected, abs=0.02)
    assert at_16k.sample_rate == 16000
    assert at_16k.duration == pytest.approx(native.duration, abs=0.001)
    assert at_16k.samples.dtype == np.float32
    assert -1.0 <= at_16k.samples.min() < -0.05
    assert 0.05 < at_16k.samples.max() <= 1.0
    assert probe_duration(path) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize(
    ("fmt", "codec", "rate", "channels", "options"),
    [
        ("ipod", "aac", RATE, 1, {}),  # .m4a
        ("mp4", "aac", RATE, 2, {}),
        ("webm", "libopus", 48000, 1, {}),
        ("ogg", "libopus", RATE, 2, {}),
        ("ogg", "vorbis", RATE, 2, {"strict": "experimental"}),  # FFmpeg's vorbis is stereo-only
        ("adts", "aac", RATE, 1, {}),
        ("matroska", "flac", RATE, 1, {}),
    ],
)
def test_containers_written_by_pyav_decode(
    fmt: str, codec: str, rate: int, channels: int, options: dict[str, str]
) -> None:
    data = write_container(fmt, codec, tone(1.5, rate), rate, channels=channels, **options)

    clip = decode(data, sample_rate=16000)

    assert clip.sample_rate == 16000
    assert 1.49 <= clip.duration <= 1.5 + 2 * 1024 / rate + 0.002
    assert dominant_frequency(clip.samples, 16000) == pytest.approx(440, abs=3)


def test_stereo_is_averaged_to_mono() -> None:
    left = tone(1.0, RATE)
    interleaved = np.stack([left, np.zeros_like(left)], axis=1).reshape(1, -1)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout="stereo")
        frame = av.AudioFrame.from_ndarray(
            (interleaved * 32767).astype(np.int16), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE, 0, Fraction(1, RATE)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    clip = decode(buffer.getvalue())

    assert clip.sample_rate == RATE
    assert len(clip.samples) == RATE
    np.testing.assert_allclose(clip.samples, left / 2, atol=1e-4)


def test_decode_resamples_to_the_requested_rate() -> None:
    clip = decode(encode(tone(1.5, RATE), RATE, "wav"), sample_rate=16000)

    assert clip.sample_rate == 16000
    assert abs(len(clip.samples) - 24000) <= 1
    assert dominant_frequency(clip.samples, 16000) == pytest.approx(440, abs=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "Audio is empty"),
        (b"Hello, this is a text file and not audio at all.\n" * 20, "could not be decoded"),
        (np.random.default_rng(7).bytes(5000), "could not be decoded"),
        (b"RIFF", "could not be decoded"),
        (encode(np.zeros(0, dtype=np.float32), RATE, "wav"), "Audio is empty"),
    ],
    ids=["empty", "text", "random", "truncated-header", "wav-without-samples"],
)
def test_undecodable_input_raises_validation_failed(data: bytes, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        decode(data)


def test_video_without_audio_is_rejected() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"  # type: ignore[union-attr]
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    with pytest.raises(ValidationFailed, match="no audio stream"):
        decode(buffer.getvalue())


def test_errors_do_not_reveal_server_paths(tmp_path: Path) -> None:
    path = tmp_path / "upload.mp3"
    path.write_bytes(b"not audio" * 100)

    with pytest.raises(ValidationFailed) as caught:
        decode_path(path)

    assert str(tmp_path) not in caught.value.message
    with pytest.raises(FileNotFoundError):
        decode_path(tmp_path / "missing.wav")


def test_truncated_file_keeps_what_decodes() -> None:
    data = encode(tone(1.5, RATE), RATE, "mp3")

    clip = decode(data[: len(data) // 2])

    assert 0.3 < clip.duration < 1.0


def test_iter_decode_streams_a_long_file_in_bounded_memory(tmp_path: Path) -> None:
    rate, minutes = 8000, 10
    path = tmp_path / "long.flac"
    encoder = make_stream_encoder("flac", rate)
    second = tone(1.0, rate, amp=0.3)
    with path.open("wb") as file:
        for _ in range(60 * minutes):
            file.write(encoder.encode(second))
        file.write(encoder.finish())

    tracemalloc.start()
    try:
        lengths = [len(chunk) for chunk in iter_decode(path, sample_rate=rate, chunk_seconds=30)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sum(lengths) == 60 * minutes * rate
    assert lengths == [30 * rate] * (2 * minutes)
    whole_pcm_bytes = 60 * minutes * rate * 4
    assert peak < whole_pcm_bytes / 5


def test_iter_decode_with_resampling_matches_decode() -> None:
    data = encode(tone(2.0, RATE), RATE, "opus")

    chunks = list(iter_decode(data, sample_rate=16000, chunk_seconds=0.3))

    assert {len(chunk) for chunk in chunks[:-1]} == {4800}
    np.testing.assert_allclose(
        np.concatenate(chunks), decode(data, sample_rate=16000).samples, atol=1e-6
    )


def test_iter_decode_raises_validation_failed_when_iterated() -> None:
    chunks = iter_decode(b"garbage" * 100, sample_rate=16000)

    with pytest.raises(ValidationFailed):
        next(chunks)


def test_probe_duration() -> None:
    whole = encode(tone(1.5, RATE), RATE, "flac")
    streamed = make_stream_encoder("flac", RATE)
    streamed_data = streamed.encode(tone(1.5, RATE)) + streamed.finish()

    assert probe_duration(whole) == pytest.approx(1.5)
    assert probe_duration(streamed_data) is None  # a streamed FLAC header has no total
    with pytest.raises(ValidationFailed):
        probe_duration(b"garbage" * 100)


def test_decode_head_decodes_only_the_head_of_a_long_file() -> None:
    rate, minutes = 8000, 10
    encoder = make_stream_encoder("flac", rate)
    second = tone(1.0, rate, amp=0.3)
    data = b"".join(encoder.encode(second) for _ in range(60 * minutes)) + encoder.finish()

    tracemalloc.start()
    try:
        clip, duration = decode_head(data, sample_rate=rate, max_seconds=30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert clip.duration == 30
    assert 30 <= duration < 60  # no declared length: what was decoded, a lower bound (#14 item 2)
    assert peak < 60 * minutes * rate * 4 / 5
    whole = encode(np.tile(second, 60 * minutes), rate, "flac")  # declares its length
    assert decode_head(whole, sample_rate=rate, max_seconds=30)[1] == 60 * minutes


@pytest.mark.parametrize("declares", [True, False], ids=["declared", "streamed"])
def test_measure_duration_reads_no_further_than_the_limit(declares: bool) -> None:
    rate = 8000
    second = tone(1.0, rate, amp=0.3)
    if declares:
        data = encode(np.tile(second, 120), rate, "flac")
    else:
        encoder = make_stream_encoder("flac", rate)
        data = b"".join(encoder.encode(second) for _ in range(120)) + encoder.finish()

    assert measure_duration(data, limit=1000) == pytest.approx(120, abs=0.6)
    if declares:  # metadata: the whole length, read from the header
        assert measure_duration(data, limit=10) == pytest.approx(120)
    else:  # packets: counted just past the limit
        assert 10 < measure_duration(data, limit=10) < 11
