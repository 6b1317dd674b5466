"""LocalAgreement: a word is final once two successive decodes agree on it."""

from __future__ import annotations

from voxserve.engines.agreement import LocalAgreement
from voxserve.engines.protocol import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [
        Word(" " + w, start + i * step, start + (i + 1) * step) for i, w in enumerate(text.split())
    ]


def texts(ws: list[Word]) -> list[str]:
    return [w.word.strip() for w in ws]


def test_first_hypothesis_confirms_nothing() -> None:
    assert LocalAgreement().insert(words("hello world")) == []


def test_common_prefix_of_two_decodes_is_confirmed() -> None:
    policy = LocalAgreement()
    policy.insert(words("the cat sad"))
    assert texts(policy.insert(words("the cat sat on"))) == ["the", "cat"]
    assert texts(policy.insert(words("the cat sat on the mat"))) == ["sat", "on"]


def test_case_and_punctuation_do_not_break_agreement() -> None:
    policy = LocalAgreement()
    policy.insert(words("Hello, world"))
    assert texts(policy.insert(words("hello world."))) == ["hello", "world."]


def test_confirmed_words_are_never_repeated() -> None:
    policy = LocalAgreement()
    policy.insert(words("one two three"))
    policy.insert(words("one two three four"))
    # A decode that still contains the confirmed words (same times) confirms only new ones.
    assert texts(policy.insert(words("one two three four five"))) == ["four"]
    assert texts(policy.confirmed) == ["one", "two", "three", "four"]


def test_take_all_confirms_the_rest_and_pop_segment_clears() -> None:
    policy = LocalAgreement()
    policy.insert(words("good morning every"))
    rest = policy.take_all(words("good morning everyone"))
    assert texts(rest) == ["good", "morning", "everyone"]
    assert texts(policy.pop_segment()) == ["good", "morning", "everyone"]
    assert policy.confirmed == []
    assert policy.last_end == 1.5


def test_repeated_seam_words_from_a_new_window_are_dropped() -> None:
    policy = LocalAgreement()
    policy.take_all(words("see you"))
    policy.pop_segment()
    # A later window starts by re-hearing "you" (its times overlap the last confirmed word).
    later = [Word(" you", 0.95, 1.2), Word(" tomorrow", 1.2, 1.8)]
    assert texts(policy.take_all(later)) == ["tomorrow"]


def test_settle_confirms_what_one_decode_heard_whole() -> None:
    policy = LocalAgreement()
    hypothesis = words("the cat sat on the mat")  # the last word ends at 3.0
    assert texts(policy.settle(hypothesis, before=2.0)) == ["the", "cat", "sat", "on"]
    # the words near the window's end wait for the next decode to agree on them
    assert texts(policy.insert(words("the cat sat on the mat today"))) == ["the", "mat"]
