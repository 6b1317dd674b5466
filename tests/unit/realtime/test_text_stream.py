"""Streamed text cut into speakable pieces: clauses (responsive) or sentences (long_form)."""

from __future__ import annotations

from voxserve.core.text_stream import TextStream


def feed(stream: TextStream, text: str, size: int = 3) -> list[str]:
    pieces: list[str] = []
    for at in range(0, len(text), size):
        pieces.extend(stream.add(text[at : at + size]))
    return pieces + stream.flush()


TEXT = "Well, hello there, my dear friend. How are you today? I am fine: thank you"


def test_responsive_mode_speaks_clause_by_clause() -> None:
    pieces = feed(TextStream("responsive"), TEXT)
    assert pieces == [
        "Well, hello there,",
        "my dear friend.",
        "How are you today?",
        "I am fine: thank you",
    ]


def test_long_form_waits_for_whole_sentences() -> None:
    pieces = feed(TextStream("long_form"), TEXT)
    assert pieces == [
        "Well, hello there, my dear friend.",
        "How are you today?",
        "I am fine: thank you",
    ]


def test_nothing_is_released_before_a_boundary_and_flush_gives_the_rest() -> None:
    stream = TextStream("responsive")
    assert stream.add("Hello wor") == []
    assert stream.add("ld") == []
    assert stream.flush() == ["Hello world"]
    assert stream.flush() == []


def test_a_tag_arriving_in_pieces_is_never_cut() -> None:
    stream = TextStream("responsive")
    assert stream.add("Hello there my friend, [emotion=ha") == ["Hello there my friend,"]
    assert stream.add("ppy, sad] ") == []  # a comma inside a tag is no boundary
    assert stream.add("good news, my friends.") == ["[emotion=happy, sad] good news,"]
    assert stream.flush() == ["my friends."]


def test_a_long_run_without_punctuation_is_cut_at_a_space() -> None:
    stream = TextStream("long_form")
    pieces = stream.add("word " * 200)
    assert pieces and all(len(p) <= 400 for p in pieces)
    assert all(not p.endswith("wor") for p in pieces)
