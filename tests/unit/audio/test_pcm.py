"""Raw PCM decoding for realtime sockets: every encoding, odd chunk boundaries, any rate."""

from __future__ import annotations

import audioop  # the reference G.711 codec (deprecated, still in Python 3.11)

import numpy as np
import pytest

from voxserve.audio.pcm import PCM_ENCODINGS, PCMDecoder, decode_pcm

TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype(np.float32)
S16 = (TONE * 32767).astype("<i2").tobytes()


def encoded(encoding: str) -> bytes:
    if encoding == "pcm_s16le":
        return S16
    if encoding == "pcm_s32le":
        return (TONE.astype(np.float64) * 2**31).astype("<i4").tobytes()
    if encoding == "pcm_f16le":
        return TONE.astype("<f2").tobytes()
    if encoding == "pcm_f32le":
        return TONE.astype("<f4").tobytes()
    if encoding == "pcm_mulaw":
        return audioop.lin2ulaw(S16, 2)
    return audioop.lin2alaw(S16, 2)


@pytest.mark.parametrize("encoding", PCM_ENCODINGS)
def test_every_encoding_decodes_to_the_signal(encoding: str) -> None:
    samples = decode_pcm(encoded(encoding), encoding)  # type: ignore[arg-type]
    assert samples.dtype == np.float32 and len(samples) == len(TONE)
    tolerance = 0.03 if encoding in ("pcm_mulaw", "pcm_alaw") else 1e-3
    assert np.max(np.abs(samples - TONE)) < tolerance


@pytest.mark.parametrize("law", ["pcm_mulaw", "pcm_alaw"])
def test_g711_tables_match_the_reference_codec(law: str) -> None:
    every_byte = bytes(range(256))
    reference = np.frombuffer(
        audioop.ulaw2lin(every_byte, 2) if law == "pcm_mulaw" else audioop.alaw2lin(every_byte, 2),
        dtype="<i2",
    )
    assert np.array_equal(np.round(decode_pcm(every_byte, law) * 32768), reference)  # type: ignore[arg-type]


def test_chunks_cut_inside_a_sample_lose_nothing() -> None:
    decoder = PCMDecoder("pcm_s16le", 16000, 16000)
    pieces = [decoder.decode(S16[at : at + 333]) for at in range(0, len(S16), 333)]
    assert np.allclose(np.concatenate(pieces), decode_pcm(S16, "pcm_s16le"))


def test_other_rates_are_resampled() -> None:
    data = (np.zeros(24000, dtype="<i2")).tobytes()  # 1 s at 24 kHz
    decoder = PCMDecoder("pcm_s16le", 24000, 16000)
    out = np.concatenate(
        [decoder.decode(data[:20000]), decoder.decode(data[20000:]), decoder.flush()]
    )
    assert len(out) == 16000
    assert decoder.seconds(len(data)) == 1.0
