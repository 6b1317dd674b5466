"""Text that arrives in fragments (as an LLM streams it), cut into pieces ready to speak.

``responsive`` mode releases a piece as soon as a clause is complete (comma, colon, dash,
sentence end), so the first audio starts early; ``long_form`` waits for whole sentences, which
sound more natural. ``flush`` releases everything held, whole or not. A piece never ends inside
a word, and an inline tag (``[emotion=happy]``) is never cut.
"""

from __future__ import annotations

import re
from typing import Literal

from voxserve.core.text import MAX_PIECE_CHARS

StreamingMode = Literal["responsive", "long_form"]

_SENTENCE = re.compile(r"[.!?…。！？;][\"')\]]*\s|\n")
_CLAUSE = re.compile(r"[.!?…。！？;:,—–][\"')\]]*\s|\n")
_TAG = re.compile(r"\[[^\]]*\]")
MIN_CLAUSE_CHARS = 12
"""A clause shorter than this waits for the next one (one-word pieces sound choppy)."""


class TextStream:
    """Accumulates fragments and hands out speakable pieces.

    Invariant: the concatenation of every piece handed out plus ``held`` equals the
    concatenation of every fragment taken (whitespace at piece edges aside).
    """

    def __init__(self, mode: StreamingMode = "responsive") -> None:
        self.mode = mode
        self._held = ""

    @property
    def held(self) -> str:
        return self._held

    def add(self, fragment: str) -> list[str]:
        """Take a fragment; return the pieces now complete (may be none)."""
        self._held += fragment
        pieces: list[str] = []
        while (cut := self._next_cut()) is not None:
            piece, self._held = self._held[:cut].strip(), self._held[cut:]
            if piece:
                pieces.append(piece)
        return pieces

    def flush(self) -> list[str]:
        """Everything held, as one piece (none when only whitespace is held)."""
        piece, self._held = self._held.strip(), ""
        return [piece] if piece else []

    def _next_cut(self) -> int | None:
        text = self._held
        bracket = text.rfind("[")
        if bracket != -1 and "]" not in text[bracket:]:
            text = text[:bracket]  # a tag still arriving: never cut it
        pattern = _CLAUSE if self.mode == "responsive" else _SENTENCE
        minimum = MIN_CLAUSE_CHARS if self.mode == "responsive" else 1
        tags = [m.span() for m in _TAG.finditer(text)]
        for match in pattern.finditer(text):
            if any(start < match.start() < end for start, end in tags):
                continue  # punctuation inside a tag is no boundary
            if len(text[: match.end()].strip()) >= minimum:
                return match.end()
        if len(self._held) > MAX_PIECE_CHARS:  # no boundary in a long run: cut at a space
            space = self._held.rfind(" ", 0, MAX_PIECE_CHARS)
            return space + 1 if space > 0 else MAX_PIECE_CHARS
        return None
