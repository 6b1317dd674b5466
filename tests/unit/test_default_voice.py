"""The voice spoken with when none is given (``voxserve say`` without ``--voice``): an English
preset of the chosen engine, its main region first, never simply the engine's first voice."""

from __future__ import annotations

from dataclasses import replace

import pytest

from voxserve.bootstrap import open_services
from voxserve.core.presets import Preset, preferred_voice
from voxserve.engines.espeak import EspeakEngine
from voxserve.engines.fake import FakeTTSEngine
from voxserve.engines.protocol import PresetVoice, TTSCapabilities
from voxserve.errors import InvalidRequest
from voxserve.settings import Settings


class Alphabetical(FakeTTSEngine):
    """Lists its voices alphabetically, as espeak does: Afrikaans first."""

    name = "alpha"

    def capabilities(self) -> TTSCapabilities:
        voices = (
            PresetVoice("af", "Afrikaans", ("af",)),
            PresetVoice("de", "German", ("de",)),
            PresetVoice("en_GB-alan", "Alan", ("en-GB",)),
            PresetVoice("en_US-joe", "Joe", ("en-US",)),
        )
        return replace(super().capabilities(), voices=voices)


def presets(*voices: PresetVoice) -> list[Preset]:
    return [Preset(f"x:{v.id}", "x", v) for v in voices]


def test_preferred_voice_is_english_main_region_first() -> None:
    af, gb = PresetVoice("af", "A", ("af",)), PresetVoice("en-gb", "G", ("en",))
    us = PresetVoice("en-us", "U", ("en",))
    assert preferred_voice(presets(af, gb, us)) == presets(us)[0]
    assert preferred_voice(presets(af, gb)) == presets(gb)[0]
    assert preferred_voice(presets(af)) == presets(af)[0]  # no English: the first
    assert preferred_voice([]) is None
    de = PresetVoice("de", "D", ("de",))
    assert preferred_voice(presets(af, de), "de") == presets(de)[0]


async def test_default_voice_of_the_best_engine_speaks_english(settings: Settings) -> None:
    async with open_services(settings, engines=[Alphabetical(), FakeTTSEngine()]) as services:
        assert services.speech.default_voice() == "alpha:en_US-joe"
        assert services.speech.default_voice("fake-tts") == "fake-tts:alice"
        assert services.speech.default_voice("tts-1") == "alpha:en_US-joe"
        with pytest.raises(InvalidRequest):
            services.speech.default_voice("no-such-model")


async def test_espeak_default_is_american_english_not_afrikaans(settings: Settings) -> None:
    async with open_services(settings, engines=[EspeakEngine()]) as services:
        first = services.voices.presets.for_engine("espeak")[0].id
        assert first == "espeak:af"  # what `say` used to pick
        assert services.speech.default_voice() == "espeak:en-us"


async def test_an_engine_without_presets_asks_for_a_voice(settings: Settings) -> None:
    class Voiceless(FakeTTSEngine):
        def capabilities(self) -> TTSCapabilities:
            return replace(super().capabilities(), voices=())

    async with open_services(settings, engines=[Voiceless()]) as services:
        with pytest.raises(InvalidRequest, match="no preset voice"):
            services.speech.default_voice()
