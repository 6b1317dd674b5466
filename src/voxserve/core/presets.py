"""The preset voices that installed engines offer, under public ids ``<engine>:<voice>``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from voxserve.engines.protocol import PresetVoice, TTSEngine

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
    """Every preset voice of the given engines, in engine order (best engine first).

    Read afresh from the engines whenever their voice lists change: a remote engine learns its
    voices only once it has been asked (on load), after the catalogue was built.
    """

    def __init__(self, engines: Iterable[TTSEngine]) -> None:
        self._engines = tuple(engines)
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
        voices = tuple(engine.capabilities().voices for engine in self._engines)
        if voices != self._seen:
            self._presets = [
                Preset(preset_id(engine.name, voice.id), engine.name, voice)
                for engine, engine_voices in zip(self._engines, voices, strict=True)
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
