"""Text handling for speech: tags, instructions, sentences, clause pieces."""

from __future__ import annotations

from voxserve.core.text import (
    Style,
    TaggedText,
    chunk_text,
    pace_speed,
    parse_tags,
    read_instructions,
    split_clauses,
    split_sentences,
    strip_tags,
)

CLAUSES = (
    "When the morning train arrived at the station, the passengers stepped onto the platform, "
    "and the conductor checked their tickets."
)


def test_sentences_split_at_ends_and_newlines() -> None:
    text = 'He said "stop!" Then he left.  Why?\nBecause.'
    assert split_sentences(text) == ['He said "stop!"', "Then he left.", "Why?", "Because."]


def test_over_long_sentences_are_cut_at_clauses_then_words() -> None:
    pieces = split_sentences(CLAUSES, max_chars=60)
    assert pieces == [
        "When the morning train arrived at the station,",
        "the passengers stepped onto the platform,",
        "and the conductor checked their tickets.",
    ]
    words = split_sentences("one two three four five six", max_chars=10)
    assert all(len(p) <= 10 for p in words)
    assert " ".join(words) == "one two three four five six"


def test_clauses_are_grouped_and_never_cut_inside() -> None:
    assert split_clauses(CLAUSES, 100) == [
        "When the morning train arrived at the station, the passengers stepped onto the platform,",
        "and the conductor checked their tickets.",
    ]
    long_clause = "a very long clause without any commas that goes on and on for many words"
    assert split_clauses(long_clause, 20) == [long_clause]
    assert split_clauses("Short one.", 60) == ["Short one."]
    assert split_clauses("   ", 60) == []


def test_chunks_group_whole_sentences() -> None:
    assert chunk_text("One. Two. Three.", 9) == ["One. Two.", "Three."]


def test_tags_split_runs_and_are_never_spoken() -> None:
    runs = parse_tags("[emotion=happy]Hi. [pace=slow]Slow. [emotion=]Plain.")
    assert runs == [
        TaggedText("Hi. ", "happy", None),
        TaggedText("Slow. ", "happy", 0.8),
        TaggedText("Plain.", None, 0.8),
    ]
    assert strip_tags("[ Pace = fast ]Go.") == "Go."


def test_pace_values() -> None:
    assert pace_speed("x-fast") == 1.5
    assert pace_speed("1.2x") == 1.2
    assert pace_speed("9") == 4.0
    assert pace_speed("warp") is None


def test_instructions_name_an_emotion_and_a_pace() -> None:
    assert read_instructions("Speak in a cheerful tone, slowly.") == Style("happy", 0.8)
    assert read_instructions("Talk very fast and sound furious") == Style("angry", 1.5)
    assert read_instructions("Sound like a pirate") == Style()
    assert read_instructions("A steadfast, madeup voice") == Style()  # whole words only
    assert read_instructions(None) == Style()
