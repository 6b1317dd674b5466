"""Decode any audio container PyAV reads to mono float32, whole or as a bounded-memory stream.

Every failure to read the input becomes :class:`~voxserve.errors.ValidationFailed` with a message
a client can be shown ("Audio could not be decoded: ..." or "Audio is empty ..."); PyAV's own
exceptions and messages (which can name server paths) never escape.
"""

from __future__ import annotations

import io
import logging
import math
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.container
import numpy as np

from voxserve.audio.resample import StreamResampler
from voxserve.audio.types import AudioClip, Samples
from voxserve.errors import ValidationFailed

log = logging.getLogger(__name__)

Source = bytes | Path | BinaryIO
"""Encoded audio: the file's bytes, a path to it, or an open binary file (an upload spooled to
disk: decoded from the file, never read into memory whole). Each use reads a file from its
start."""

# Demuxers that may hold audio. The allow-list keeps untrusted uploads away from demuxers that
# open other URLs or files (hls, concat, image sequences) and from lenient probes that would
# "detect" plain text as an ANSI-art video (tty).
_DEMUXERS = (
    "wav,w64,aiff,caf,au,flac,mp3,ogg,mov,matroska,aac,loas,ac3,eac3,dts,amr,amrnb,amrwb,"
    "wv,ape,tta,tak,shn,mpc,mpc8,asf,xwma,avi,mpeg,mpegts,flv,voc,nistsphere"
)
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}


def decode(data: bytes, *, sample_rate: int | None = None) -> AudioClip:
    """Decode a whole encoded file to a mono clip.

    Args:
        data: the encoded file (WAV, MP3, FLAC, Ogg Opus/Vorbis, M4A/AAC, WebM, ADTS AAC, ...).
        sample_rate: resample to this rate; ``None`` keeps the file's own rate.

    Raises:
        ValidationFailed: the data is empty, not audio, or has no decodable audio stream.
    """
    return _decode_all(bytes(data), sample_rate)


def decode_path(path: Path, *, sample_rate: int | None = None) -> AudioClip:
    """Like :func:`decode`, reading the file at ``path`` (``FileNotFoundError`` if missing)."""
    return _decode_all(Path(path), sample_rate)


def iter_decode(
    source: Source, *, sample_rate: int, chunk_seconds: float = 30.0
) -> Iterator[Samples]:
    """Stream the decoded mono audio as chunks of ``chunk_seconds`` (the last one shorter).

    Only about one chunk of PCM is held at a time, so hour-long files decode in bounded memory.
    Errors are raised when iteration starts (this is a generator).

    Raises:
        ValidationFailed: as :func:`decode`.
    """
    if chunk_seconds <= 0:
        raise ValueError("chunk_seconds must be positive")
    size = max(1, round(chunk_seconds * sample_rate))
    with _open(source) as container:
        decoder = _Decoder(container)
        pieces = (samples for samples, _ in _resampled(decoder.pieces(), sample_rate))
        yield from _rechunk(pieces, size)
        decoder.check_not_empty()


def decode_head(data: Source, *, sample_rate: int, max_seconds: float) -> tuple[AudioClip, float]:
    """The first ``max_seconds`` of the audio, and the whole file's duration.

    Decoding stops at ``max_seconds``: a tiny FLAC may hold hours of silence, and neither time
    nor memory may grow with them. The duration is the decoded length when decoding reached the
    end; otherwise the container's declared duration (at least what was decoded), or, when the
    container declares none, what was decoded (a lower bound).

    Raises:
        ValidationFailed: as :func:`decode`.
    """
    keep = round(max_seconds * sample_rate) if math.isfinite(max_seconds) else sys.maxsize
    head: list[Samples] = []
    kept = 0
    complete = True
    with _open(data) as container:
        declared = _declared_duration(container)
        decoder = _Decoder(container)
        for samples, _ in _resampled(decoder.pieces(), sample_rate):
            if len(samples) > keep - kept:  # audio past the head: stop decoding here
                head.append(samples[: keep - kept])
                kept = keep
                complete = False
                break
            head.append(samples)
            kept += len(samples)
        decoder.check_not_empty()
    clip = AudioClip(np.concatenate(head) if head else np.zeros(0, np.float32), sample_rate)
    if complete or declared is None:
        return clip, clip.duration
    return clip, max(declared, clip.duration)


def probe_duration(source: Source) -> float | None:
    """The duration in seconds the container declares, without decoding; ``None`` if unknown.

    Raises:
        ValidationFailed: the input is not a readable audio file.
    """
    with _open(source) as container:
        return _declared_duration(container)


def measure_duration(source: Source, *, limit: float) -> float:
    """The duration in seconds, without decoding: the container's declared one, else the sum of
    its packets' durations (demuxing only), counted no further than just past ``limit``.

    Raises:
        ValidationFailed: the input is not a readable audio file.
    """
    with _open(source) as container:
        declared = _declared_duration(container)
        if declared is not None:
            return declared
        stream = _audio_stream(container)
        base = float(stream.time_base or Fraction(1, stream.rate or 1))
        end = 0.0
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    end = max(end, (packet.pts + (packet.duration or 0)) * base)
                if end > limit:
                    break
        except av.FFmpegError:
            pass  # a damaged tail: what was read so far is the duration
        return end


def _declared_duration(container: av.container.InputContainer) -> float | None:
    stream = _audio_stream(container)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _decode_all(source: Source, sample_rate: int | None) -> AudioClip:
    with _open(source) as container:
        decoder = _Decoder(container)
        pieces = list(_resampled(decoder.pieces(), sample_rate))
        decoder.check_not_empty()
    return AudioClip(np.concatenate([samples for samples, _ in pieces]), pieces[-1][1])


@contextmanager
def _open(source: Source) -> Iterator[av.container.InputContainer]:
    file: str | BinaryIO
    if isinstance(source, Path):
        if not source.is_file():
            raise FileNotFoundError(f"No such audio file: {source}")
        file = str(source)
    elif not isinstance(source, bytes | bytearray | memoryview):
        source.seek(0)
        file = source
    elif len(source) == 0:
        raise ValidationFailed("Audio is empty: no data was received.")
    else:
        file = io.BytesIO(source)
    try:
        container = av.open(file, mode="r", options=_OPEN_OPTIONS)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise _undecodable(exc) from None
    with container:
        try:
            yield container
        except av.FFmpegError as exc:  # e.g. a sample layout the converter cannot set up
            raise _undecodable(exc) from None


def _undecodable(exc: BaseException | None = None, reason: str = "") -> ValidationFailed:
    if not reason:
        # strerror is FFmpeg's generic text; str(exc) would also carry the file name.
        detail = getattr(exc, "strerror", None) or "the data is not a supported audio file"
        reason = detail[0].lower() + detail[1:]
    return ValidationFailed(f"Audio could not be decoded: {reason}.")


def _audio_stream(container: av.container.InputContainer) -> av.AudioStream:
    if not container.streams.audio:
        raise _undecodable(reason="the file has no audio stream")
    stream = container.streams.best("audio")
    return stream if isinstance(stream, av.AudioStream) else container.streams.audio[0]


class _Decoder:
    """Decodes one container's audio stream to mono float32 pieces at the stream's own rate."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self._container = container
        self._stream = _audio_stream(container)
        self._converter: av.AudioResampler | None = None
        self._layout_key: tuple[str, str, int] | None = None
        self.samples = 0
        self.errors = 0

    def pieces(self) -> Iterator[tuple[Samples, int]]:
        """Yield ``(mono samples, sample rate)`` for each decoded frame."""
        for frame in self._frames():
            mono = self._to_mono(frame)
            self.samples += len(mono)
            yield mono, frame.sample_rate

    def check_not_empty(self) -> None:
        """Raise if nothing could be decoded (all packets corrupt, or a stream with no samples)."""
        if self.samples:
            return
        if self.errors:
            raise _undecodable(reason="no audio frame could be decoded")
        raise ValidationFailed("Audio is empty: the file contains no audio samples.")

    def _frames(self) -> Iterator[av.AudioFrame]:
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                # A truncated or damaged tail: keep what was decoded, as ffmpeg itself does.
                self.errors += 1
                log.info("audio demuxing stopped early: %s", exc.strerror)
                return
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.errors += 1  # one damaged packet; the decoder resynchronises on the next
                continue
            for frame in frames:
                if isinstance(frame, av.AudioFrame) and frame.samples:
                    yield frame

    def _to_mono(self, frame: av.AudioFrame) -> Samples:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        converter = self._converter
        if converter is None or key != self._layout_key:
            # Streams may change layout or format midway (chained Ogg, some MPEG-TS).
            converter = self._converter = av.AudioResampler(format="fltp")
            self._layout_key = key
        planes = [f.to_ndarray() for f in converter.resample(frame)]
        mono = np.concatenate(planes, axis=1).mean(axis=0, dtype=np.float32)
        return np.clip(mono, -1.0, 1.0, out=mono)


def _resampled(
    pieces: Iterable[tuple[Samples, int]], sample_rate: int | None
) -> Iterator[tuple[Samples, int]]:
    """Bring pieces to ``sample_rate`` (default: the first piece's rate), even if rates change."""
    resampler: StreamResampler | None = None
    for samples, rate in pieces:
        if resampler is None or resampler.from_rate != rate:
            if resampler is not None:
                yield resampler.flush(), resampler.to_rate
            resampler = StreamResampler(rate, sample_rate or rate)
            sample_rate = resampler.to_rate
        yield resampler.process(samples), resampler.to_rate
    if resampler is not None:
        yield resampler.flush(), resampler.to_rate


def _rechunk(pieces: Iterable[Samples], size: int) -> Iterator[Samples]:
    """Regroup a stream of arrays into arrays of exactly ``size`` samples (the last shorter)."""
    held: list[Samples] = []
    count = 0
    for piece in pieces:
        held.append(piece)
        count += len(piece)
        while count >= size:
            joined = np.concatenate(held)
            yield joined[:size]
            held = [joined[size:]]
            count = len(held[0])
    if count:
        yield np.concatenate(held)
