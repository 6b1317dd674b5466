"""A GIL-holding engine in a worker process (#14 item 5): the same transcripts as in-process,
errors under their own class, an abandoned transcription never closing the next, a dead child
started again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import speech_data
from voxserve.audio.types import AudioClip
from voxserve.engines.pocketsphinx import PocketsphinxEngine
from voxserve.engines.protocol import Segment, STTEngine, TranscriptionOptions
from voxserve.engines.worker_process import ProcessSTTEngine
from voxserve.errors import Unsupported

JFK = "faster_whisper_tests/jfk.flac"
FACTORY = "voxserve.engines.pocketsphinx:PocketsphinxEngine"


@pytest.fixture(scope="module")
def engine() -> Iterator[ProcessSTTEngine]:
    engine = ProcessSTTEngine(FACTORY)
    engine.load()
    yield engine
    engine.unload()


@pytest.fixture(scope="module")
def jfk() -> AudioClip:
    return speech_data.decode(speech_data.clip(JFK).path)


def test_it_is_the_engine_it_hosts(engine: ProcessSTTEngine) -> None:
    assert isinstance(engine, STTEngine)
    local = PocketsphinxEngine()
    assert (engine.name, engine.version) == (local.name, local.version)
    assert engine.capabilities() == local.capabilities()


@pytest.fixture(scope="module")
def expected(jfk: AudioClip) -> list[Segment]:
    """What the engine answers in this process."""
    local = PocketsphinxEngine()
    local.load()
    return list(local.transcribe(jfk, TranscriptionOptions())[1])


def test_transcripts_match_the_in_process_engine(
    engine: ProcessSTTEngine, jfk: AudioClip, expected: list[Segment]
) -> None:
    info, segments = engine.transcribe(jfk, TranscriptionOptions())
    assert info.duration == pytest.approx(jfk.duration)
    assert list(segments) == expected


def test_errors_keep_their_class_and_field(engine: ProcessSTTEngine, jfk: AudioClip) -> None:
    with pytest.raises(Unsupported, match="English only") as refused:
        engine.transcribe(jfk, TranscriptionOptions(language="fr"))
    assert refused.value.field == "language"


def test_an_abandoned_transcription_never_closes_the_next(
    engine: ProcessSTTEngine, jfk: AudioClip
) -> None:
    _, first = engine.transcribe(jfk, TranscriptionOptions())
    _, second = engine.transcribe(jfk, TranscriptionOptions())  # the first was left unread
    assert list(first) == []  # superseded: it ends, it does not read the second's segments
    first.close()
    assert "fellow" in " ".join(s.text for s in second)


def test_a_dead_worker_is_started_again(engine: ProcessSTTEngine, jfk: AudioClip) -> None:
    process = engine._process
    assert process is not None
    process.kill()
    process.join()
    _, segments = engine.transcribe(jfk, TranscriptionOptions())  # a new child
    assert "fellow" in " ".join(s.text for s in segments)
    assert engine._process is not None and engine._process.pid != process.pid
