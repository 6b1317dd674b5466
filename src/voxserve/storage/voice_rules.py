"""The rules every ``VoiceRepository`` applies, whatever holds the rows (SQL or memory).

No SQLAlchemy here: the in-memory repository (``storage.memory``) uses the same rules as the SQL
one, so both answer the storage contract tests alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from voxserve.storage.protocol import VoiceQuery, VoiceSample

UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "slug",
        "languages",
        "gender",
        "age",
        "tags",
        "color",
        "description",
        "retention_notice",
        "trimmed_seconds",
        "updated_at",
    }
)
"""Fields ``update`` may set; samples go through ``set_sample``, deletion through
``mark_deleted``."""

MAIN_EMOTION = ""
"""How the main sample's emotion (None on the record) is keyed: NULLs would not be unique."""

T = TypeVar("T")


def limit_message(limit: int) -> str:
    return f"Voice limit reached: at most {limit} custom voices per owner."


def check_samples(samples: Iterable[VoiceSample]) -> None:
    """Raises ValueError unless there is one main sample and at most one per emotion."""
    emotions = [sample.emotion or MAIN_EMOTION for sample in samples]
    if MAIN_EMOTION not in emotions:
        raise ValueError("a voice needs a main sample (emotion None)")
    if len(set(emotions)) != len(emotions):
        raise ValueError("a voice has at most one sample per emotion")


def check_updatable(changes: Mapping[str, Any]) -> None:
    """Raises ValueError for a field that ``update`` may not set."""
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"voice fields that cannot be updated: {sorted(unknown)}")


def ordered_samples(samples: Iterable[VoiceSample]) -> tuple[VoiceSample, ...]:
    """The main sample first, then the emotion variants by name."""
    return tuple(sorted(samples, key=lambda sample: sample.emotion or MAIN_EMOTION))


def page(matching: Sequence[T], *, offset: int, limit: int) -> tuple[list[T], int]:
    """The page of ``list``: ``limit`` voices from ``offset`` of every voice that matches (in
    the list's order, newest first), and how many match."""
    return (list(matching[offset : offset + limit]) if limit > 0 else []), len(matching)


def matches(
    query: VoiceQuery,
    *,
    name: str,
    description: str | None,
    tags: Iterable[str] | None,
    languages: Iterable[str] | None,
) -> bool:
    """Whether a voice passes the text and language filters of ``query`` (case-insensitive).

    Genders are matched exactly by the repositories themselves (SQL filters them in the query).
    """
    if query.text:
        needle = query.text.casefold()
        haystack = [name]
        if query.text_in_details:
            haystack += [description or "", *(tags or ())]
        if not any(needle in text.casefold() for text in haystack):
            return False
    if query.languages:
        wanted = {language.casefold() for language in query.languages}
        if wanted.isdisjoint(language.casefold() for language in languages or ()):
            return False
    return True
