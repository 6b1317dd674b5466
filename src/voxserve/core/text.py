"""Text handling for speech: inline ``[emotion=...]``/``[pace=...]`` tags, OpenAI-style
``instructions``, and sentence splitting."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TAG = re.compile(r"\[\s*(emotion|pace)\s*=\s*([^\]]*?)\s*\]", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?…。！？;])\s+|(?<=[.!?…。！？;][\"')\]])\s+|\n+")
"""Whitespace after a sentence end (and a closing quote or bracket, which stays with it)."""
CLAUSE_END = re.compile(r"(?<=[,:;—–])\s+")

PACE_SPEEDS = {
    "x-slow": 0.6,
    "very_slow": 0.6,
    "very slow": 0.6,
    "slower": 0.8,
    "slow": 0.8,
    "normal": 1.0,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "faster": 1.25,
    "x-fast": 1.5,
    "very_fast": 1.5,
    "very fast": 1.5,
}
MAX_PIECE_CHARS = 400
"""Longer sentences are cut at clauses, then words, so no piece holds the engine for long."""
CLAUSE_PIECE_CHARS = 60
"""Clause groups of about this size are what a busy engine gets (see ``split_clauses``)."""


INSTRUCTION_EMOTIONS = {
    "happy": ("happy", "cheerful", "joyful", "upbeat", "positive", "delighted", "glad"),
    "sad": ("sad", "melancholic", "melancholy", "sorrowful", "somber", "sombre", "gloomy"),
    "angry": ("angry", "furious", "irritated", "annoyed", "mad"),
    "excited": ("excited", "enthusiastic", "energetic", "thrilled"),
    "calm": ("calm", "soothing", "gentle", "relaxed", "serene", "peaceful"),
    "neutral": ("neutral", "flat", "matter-of-fact"),
}
"""Words of ``instructions`` that ask for an emotion, by the emotion name voices use."""
INSTRUCTION_PACES = (
    (("very slowly", "very slow"), 0.6),
    (("slowly", "slow", "unhurried"), 0.8),
    (("very quickly", "very fast"), 1.5),
    (("quickly", "fast", "rapidly", "brisk"), 1.25),
)
"""Phrases of ``instructions`` that ask for a pace (the first match wins)."""
WORD = re.compile(r"[a-z][a-z-]*")


@dataclass(frozen=True)
class Style:
    """What ``instructions`` asked for that the engines can do (None: nothing)."""

    emotion: str | None = None
    pace: float | None = None


def read_instructions(instructions: str | None) -> Style:
    """The emotion and pace that free-text ``instructions`` (OpenAI's ``gpt-4o-mini-tts``) ask
    for, from the words they use ("Speak in a cheerful tone, slowly" -> happy, 0.8). Anything
    else in them (accents, characters) no local engine can do and has no effect."""
    text = (instructions or "").lower()
    words = set(WORD.findall(text))
    emotion = next(
        (name for name, cues in INSTRUCTION_EMOTIONS.items() if words.intersection(cues)), None
    )
    pace = next(
        (speed for cues, speed in INSTRUCTION_PACES if any(_has_phrase(text, c) for c in cues)),
        None,
    )
    return Style(emotion, pace)


def _has_phrase(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text) is not None


@dataclass(frozen=True)
class TaggedText:
    """A run of text with the emotion and pace in force for it (None: not set)."""

    text: str
    emotion: str | None = None
    pace: float | None = None


def parse_tags(text: str) -> list[TaggedText]:
    """Split ``text`` at emotion/pace tags. A tag applies until the next tag of its type; tags are
    never spoken; an unknown pace value has no effect."""
    runs: list[TaggedText] = []
    emotion: str | None = None
    pace: float | None = None
    position = 0
    for match in TAG.finditer(text):
        _append(runs, text[position : match.start()], emotion, pace)
        kind, value = match.group(1).lower(), match.group(2).strip().lower()
        if kind == "emotion":
            emotion = value or None
        else:
            pace = pace_speed(value)
        position = match.end()
    _append(runs, text[position:], emotion, pace)
    return runs


def strip_tags(text: str) -> str:
    return TAG.sub("", text)


def pace_speed(value: str) -> float | None:
    """``slow``/``fast``... or a finite number like ``1.2``; None when not understood (``nan``
    and ``inf`` included: they must never reach an engine)."""
    if value in PACE_SPEEDS:
        return PACE_SPEEDS[value]
    try:
        speed = float(value.rstrip("x"))
    except ValueError:
        return None
    return min(max(speed, 0.25), 4.0) if math.isfinite(speed) else None


def split_sentences(text: str, max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """Sentences (and pieces of over-long ones), without empty pieces."""
    pieces: list[str] = []
    for sentence in SENTENCE_END.split(text):
        sentence = sentence.strip()
        if sentence:
            pieces.extend(_cut(sentence, max_chars))
    return pieces


def split_clauses(sentence: str, max_chars: int = CLAUSE_PIECE_CHARS) -> list[str]:
    """``sentence`` cut at clause ends (``,`` ``:`` ``;`` dashes) into runs of whole clauses of at
    most ``max_chars`` where possible; a longer clause stays whole (a cut inside a clause would be
    heard). Shorter pieces hold a shared engine for less time, so others wait less."""
    return _cut(sentence.strip(), max_chars, words=False) if sentence.strip() else []


def chunk_text(text: str, max_chars: int) -> list[str]:
    """Group whole sentences into chunks of at most ``max_chars`` (a longer sentence is cut)."""
    chunks: list[str] = []
    current = ""
    for sentence in split_sentences(text, max_chars):
        if current and len(current) + 1 + len(sentence) > max_chars:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        chunks.append(current)
    return chunks


def _cut(sentence: str, max_chars: int, *, words: bool = True) -> list[str]:
    """Clauses of ``sentence`` grouped up to ``max_chars``; ``words``: cut longer clauses at
    spaces too."""
    if len(sentence) <= max_chars:
        return [sentence]
    out: list[str] = []
    for clause in CLAUSE_END.split(sentence):
        while words and len(clause) > max_chars:
            cut = clause.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            out.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if clause:
            if out and len(out[-1]) + 1 + len(clause) <= max_chars:
                out[-1] = f"{out[-1]} {clause}"
            else:
                out.append(clause)
    return out


def _append(runs: list[TaggedText], text: str, emotion: str | None, pace: float | None) -> None:
    if text.strip():
        runs.append(TaggedText(text, emotion, pace))
