"""Word error rate with Whisper's English text normaliser (the ``whisper-normalizer`` package)."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

_normalise = EnglishTextNormalizer()


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER over normalised texts."""
    refs = [_normalise(r) for r in references]
    hyps = [_normalise(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))
