"""Long audio is transcribed window by window: bounded memory, continuous timestamps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.support.audio_samples import pcm16_wav
from voxserve.audio.encode import make_stream_encoder
from voxserve.bootstrap import open_services
from voxserve.core.auth import LOCAL_OWNER_ID
from voxserve.core.transcription import AudioSource, TranscriptionRequest
from voxserve.engines.fake import FakeSTTEngine
from voxserve.errors import PayloadTooLarge
from voxserve.settings import Settings


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


async def transcribe(settings: Settings, data: bytes, engine: FakeSTTEngine):  # type: ignore[no-untyped-def]
    async with open_services(settings, engines=[engine]) as services:
        await services.storage.keys.get_or_create_owner(LOCAL_OWNER_ID, "local")
        request = TranscriptionRequest(LOCAL_OWNER_ID, AudioSource(data=data), word_timestamps=True)
        prepared = await services.transcription.prepare(request)
        return prepared, await services.transcription.transcribe(prepared)


async def test_windows_keep_time_and_language(settings: Settings) -> None:
    windowed = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"transcription_window_seconds": 30})}
    )
    engine = FakeSTTEngine("One. Two.", language="fr")
    prepared, transcript = await transcribe(windowed, pcm16_wav(tone(75), 16000), engine)
    assert prepared.audio.duration == 30  # only the first window is held
    assert prepared.duration == 75
    assert len(engine.calls) == 3  # windows of 30, 30 and 15 s
    assert [c.language for c in engine.calls] == [None, "fr", "fr"]
    starts = [s.start for s in transcript.segments]
    assert starts == [0, 15, 30, 45, 60, 67.5]
    words = [w for s in transcript.segments for w in s.words or ()]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert transcript.duration == 75


@pytest.mark.slow
async def test_one_hour_file(settings: Settings) -> None:
    rate = 16000
    encoder = make_stream_encoder("flac", rate)
    minute = tone(60, rate)
    data = b"".join(encoder.encode(minute) for _ in range(60)) + encoder.finish()
    engine = FakeSTTEngine("Hello.")
    prepared, transcript = await transcribe(settings, data, engine)
    assert prepared.duration == 3600
    assert prepared.audio.duration == settings.limits.transcription_window_seconds
    assert len(engine.calls) == 6
    assert transcript.segments[-1].end == pytest.approx(3600)


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count calls of a decoding function as core.transcription sees it."""
    import voxserve.core.transcription as module

    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize(
    ("container", "measured"),
    [("wav", 1), ("flac", 1)],
    ids=["duration-in-header", "streamed-flac-without-one"],
)
async def test_long_audio_is_decoded_once_and_measured_without_decoding(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, container: str, measured: int
) -> None:
    windowed = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"transcription_window_seconds": 30})}
    )
    streams = counting(monkeypatch, "iter_decode")
    measures = counting(monkeypatch, "measure_duration")
    if container == "wav":
        data = pcm16_wav(tone(75), 16000)
    else:  # a stream encoder cannot go back to write the length into the header
        encoder = make_stream_encoder("flac", 16000)
        data = encoder.encode(tone(75)) + encoder.finish()
    prepared, transcript = await transcribe(windowed, data, FakeSTTEngine("One. Two."))
    assert prepared.duration == pytest.approx(75, abs=0.1)
    assert transcript.segments[-1].end == pytest.approx(75, abs=0.1)
    # The windows come from one decoder; the length is measured once, without decoding (from
    # the header, or from the packets of a file that declares none: #14 item 2).
    assert (len(streams), len(measures)) == (1, measured)


async def test_short_audio_keeps_no_decoder(settings: Settings) -> None:
    prepared, transcript = await transcribe(settings, pcm16_wav(tone(3), 16000), FakeSTTEngine())
    assert prepared.rest is None
    assert prepared.duration == transcript.duration == 3


async def test_a_file_over_the_limit_is_refused_before_transcribing(settings: Settings) -> None:
    limited = settings.model_copy(
        update={
            "limits": settings.limits.model_copy(
                update={"transcription_window_seconds": 30, "max_audio_seconds": 60}
            )
        }
    )
    engine = FakeSTTEngine()
    with pytest.raises(PayloadTooLarge, match="limit is 60 s"):
        await transcribe(limited, pcm16_wav(tone(75), 16000), engine)
    assert engine.calls == []
