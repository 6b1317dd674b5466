"""The preset voices that installed engines offer, under public ids ``<engine>:<voice>``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from voxserve.engines.handles import TTSHandle
from voxserve.engines.protocol import PresetVoice

PRESET_CREATED_AT = datetime(2026, 1, 1, tzinfo=UTC)
"""Presets have no creation time of their own; the wire format requires one."""


@dataclass(frozen=True)
class Preset:
    id: str
    """Public id, ``<engine>:<voice>``."""
    engine: str
    voice: PresetVoice


def preset_id(engine: str, voice: str) -> str:
    return f"{engine}:{voice}"


class PresetCatalog:
    """Every preset voice of the speech engines, in engine order (best engine first).

    Read from the engines' handles, afresh whenever their voice lists change: a remote engine
    learns its voices only once it has been asked (on load), after the catalogue was built.

    Args:
        handles: returns the current speech engine handles (``EngineManager.tts_handles``).
    """

    def __init__(self, handles: Callable[[], Iterable[TTSHandle]]) -> None:
        self._handles = handles
        self._seen: tuple[tuple[PresetVoice, ...], ...] | None = None
        self._presets: list[Preset] = []
        self._by_id: dict[str, Preset] = {}

    def all(self) -> list[Preset]:
        return list(self._current())

    def get(self, public_id: str) -> Preset | None:
        self._current()
        return self._by_id.get(public_id)

    def for_engine(self, engine: str) -> list[Preset]:
        return [p for p in self._current() if p.engine == engine]

    def _current(self) -> list[Preset]:
        handles = tuple(self._handles())
        voices = tuple(handle.capabilities.voices for handle in handles)
        if voices != self._seen:
            self._presets = [
                Preset(preset_id(handle.name, voice.id), handle.name, voice)
                for handle, engine_voices in zip(handles, voices, strict=True)
                for voice in engine_voices
            ]
            self._by_id = {p.id: p for p in self._presets}
            self._seen = voices
        return self._presets

    def matching(
        self, *, text: str | None, genders: tuple[str, ...], languages: tuple[str, ...]
    ) -> list[Preset]:
        """Presets whose name or id contains ``text`` and that match any gender/language given."""
        needle = (text or "").casefold()
        out = []
        for p in self._current():
            if needle and needle not in p.voice.name.casefold() and needle not in p.id.casefold():
                continue
            if genders and p.voice.gender not in genders:
                continue
            if languages and not languages_overlap(p.voice.languages, languages):
                continue
            out.append(p)
        return out


def languages_overlap(have: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """``en`` matches ``en-US`` and the other way round."""
    base = {lang.split("-")[0].split("_")[0].casefold() for lang in have}
    return any(w.split("-")[0].split("_")[0].casefold() in base for w in wanted)


def preferred_voice(presets: list[Preset], language: str = "en") -> Preset | None:
    """The preset to speak with when none is asked for: the first that speaks ``language``,
    its most common region first (``en-us`` before ``en-gb`` or ``en-029``), else the first.

    Engines list voices alphabetically (espeak starts with Afrikaans), not by preference.
    """
    speaking = [p for p in presets if languages_overlap(p.voice.languages, (language,))]
    if not speaking:
        return presets[0] if presets else None
    region = f"{language}-{_MAIN_REGIONS.get(language, language)}".casefold()
    return min(speaking, key=lambda p: 0 if _mentions(p, region) else 1)


_MAIN_REGIONS = {"en": "us", "pt": "br", "es": "es", "fr": "fr", "de": "de"}


def _mentions(preset: Preset, region: str) -> bool:
    texts = (preset.voice.id, *preset.voice.languages)
    return any(t.casefold().replace("_", "-").startswith(region) for t in texts)
