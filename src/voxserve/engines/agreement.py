"""The LocalAgreement policy for streaming recognition over a batch model.

A batch recogniser re-decodes a growing window every step; its latest words are unstable (the
model revises them as more audio arrives). A word is *confirmed* once two successive decodes
agree on it: the longest common prefix of the last two hypotheses, after what is already
confirmed, is final and never changes (Macháček et al., "Turning Whisper into Real-Time
Transcription System", 2023: LocalAgreement-2).

Pure logic on words with absolute times; no model, no audio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from voxserve.engines.protocol import Word

OVERLAP_SLACK_S = 0.1
"""A hypothesis word starting this much before the last confirmed end may still be new."""
MAX_NGRAM = 5
"""Longest run of words that may repeat across the confirmed/hypothesis seam."""


def normalised(word: str) -> str:
    """A word for comparison: case and punctuation do not make two decodes disagree."""
    return re.sub(r"[^\w']", "", word.lower())


@dataclass
class LocalAgreement:
    """Confirms words that two successive hypotheses agree on.

    Invariants: ``confirmed`` only grows (until ``take_all``/``reset``); a confirmed word is
    never revised; ``last_end`` is the end time of the last confirmed word.
    """

    confirmed: list[Word] = field(default_factory=list)
    """Words confirmed since the last segment was taken."""
    last_end: float = 0.0
    _previous: list[Word] = field(default_factory=list)
    _tail: list[Word] = field(default_factory=list)
    """The last confirmed words (also across segments): to drop what a hypothesis repeats."""

    def insert(self, hypothesis: Sequence[Word]) -> list[Word]:
        """Take a new decode of the window and return the words it newly confirms."""
        fresh = self._unconfirmed(hypothesis)
        agreed: list[Word] = []
        for new, old in zip(fresh, self._previous, strict=False):
            if normalised(new.word) != normalised(old.word):
                break
            agreed.append(new)
        self._previous = fresh[len(agreed) :]
        self._confirm(agreed)
        return agreed

    def settle(self, hypothesis: Sequence[Word], before: float) -> list[Word]:
        """One decode is enough for the words that end before ``before`` (the window's audio
        went on well past them, so the model heard them whole): confirm those at once, keep
        the rest for the next decode to agree on. The stream uses this under load, when the
        next decode is far away; returns the words confirmed now."""
        fresh = self._unconfirmed(hypothesis)
        cut = next((i for i, w in enumerate(fresh) if w.end > before), len(fresh))
        self._previous = fresh[cut:]
        self._confirm(fresh[:cut])
        return fresh[:cut]

    def take_all(self, hypothesis: Sequence[Word] | None = None) -> list[Word]:
        """End of a segment: confirm every word of ``hypothesis`` (default the last one) and
        return the words confirmed now; the next segment starts empty."""
        rest = self._unconfirmed(hypothesis) if hypothesis is not None else self._previous
        self._confirm(list(rest))
        self._previous = []
        return list(rest)

    def pop_segment(self) -> list[Word]:
        """The words confirmed since the last call (a segment's words); clears them."""
        words, self.confirmed = self.confirmed, []
        return words

    def forget_seam(self) -> None:
        """The next window holds none of the confirmed audio (it was all cut away): nothing
        it hears can be a re-hearing, even the same words said again."""
        self._tail = []

    def _confirm(self, words: list[Word]) -> None:
        if not words:
            return
        self.confirmed.extend(words)
        self._tail = (self._tail + words)[-MAX_NGRAM:]
        self.last_end = max(self.last_end, words[-1].end)

    def _unconfirmed(self, hypothesis: Sequence[Word]) -> list[Word]:
        """The hypothesis without what is already confirmed: words that end before the last
        confirmed one, then any run of words at its start repeating the confirmed tail."""
        words = [w for w in hypothesis if w.start > self.last_end - OVERLAP_SLACK_S]
        words = [w for w in words if normalised(w.word)]
        for n in range(min(MAX_NGRAM, len(words), len(self._tail)), 0, -1):
            tail = [normalised(w.word) for w in self._tail[-n:]]
            head = [normalised(w.word) for w in words[:n]]
            if tail == head:
                return words[n:]
        return words
