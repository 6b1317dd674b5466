"""Hosted APIs' voice and model names, mapped to what this server has.

Code written for Mistral or OpenAI names voices like ``voice_478``, ``en_paul_happy`` or ``alloy``.
Each alias carries the traits of the hosted voice (language, gender, emotion); it resolves to the
first local preset, in engine order, with the same language and gender (then language only, then
any). ``settings.engines.voice_aliases`` pins an alias to a local preset id instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from voxserve.core.gateway_presets import EXAMPLE_VOICE_ID, family_variant_names
from voxserve.core.presets import Preset, PresetCatalog, languages_overlap, preferred_voice


@dataclass(frozen=True)
class HostedVoice:
    language: str
    gender: str
    emotion: str | None = None


def _voxtral2(prefix: str, language: str, gender: str, emotions: str) -> dict[str, HostedVoice]:
    return {f"{prefix}_{e}": HostedVoice(language, gender, e) for e in emotions.split()}


HOSTED_VOICES: dict[str, HostedVoice] = {
    # Mistral Voxtral 3 presets (docs.mistral.ai voices page).
    "voice_478": HostedVoice("en", "female"),  # Sarah
    "voice_447": HostedVoice("en", "female"),  # Yael
    "voice_485": HostedVoice("en", "male"),  # Eric
    "voice_484": HostedVoice("en", "male"),  # Jesse
    "voice_483": HostedVoice("es", "female"),  # Esmeralda
    "voice_482": HostedVoice("it", "female"),  # Andrea
    "voice_481": HostedVoice("de", "female"),  # Fiona
    "voice_480": HostedVoice("pt", "female"),  # Marina
    "voice_479": HostedVoice("ar", "female"),  # Linda
    "voice_592": HostedVoice("fr", "female"),  # Marie
    # Mistral Voxtral 2 presets: the emotion is part of the id.
    **_voxtral2(
        "en_paul", "en", "male", "neutral happy cheerful excited confident sad frustrated angry"
    ),
    **_voxtral2(
        "gb_jane",
        "en",
        "female",
        "neutral confident curious confused sarcasm sad shameful jealousy frustrated",
    ),
    **_voxtral2("gb_oliver", "en", "male", "neutral cheerful excited confident curious sad angry"),
    **_voxtral2("fr_marie", "fr", "female", "neutral happy excited curious sad angry"),
    # OpenAI voices (all speak every language; English is the natural match).
    "alloy": HostedVoice("en", "female"),
    "ash": HostedVoice("en", "male"),
    "ballad": HostedVoice("en", "male"),
    "coral": HostedVoice("en", "female"),
    "echo": HostedVoice("en", "male"),
    "fable": HostedVoice("en", "male"),
    "nova": HostedVoice("en", "female"),
    "onyx": HostedVoice("en", "male"),
    "sage": HostedVoice("en", "female"),
    "shimmer": HostedVoice("en", "female"),
    "verse": HostedVoice("en", "male"),
    "marin": HostedVoice("en", "female"),
    "cedar": HostedVoice("en", "male"),
}

# The gateway's named presets: each variant's stable id is its Voxtral 2 name's alias.
HOSTED_VOICES.update({k: HOSTED_VOICES[v] for k, v in family_variant_names().items()})
HOSTED_VOICES[EXAMPLE_VOICE_ID] = HostedVoice("en", "")  # the default English preset

HOSTED_TTS_MODELS = frozenset(
    {
        "voxtral-mini-tts-2603",
        "voxtral-mini-tts-3-0",
        "voxtral-mini-tts-3",
        "voxtral-mini-tts-latest",
        "voxtral-tts",
        "tts-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
        "gpt-4o-mini-tts-2025-03-20",
    }
)
HOSTED_STT_MODELS = frozenset(
    {
        "voxtral-mini-latest",
        "voxtral-mini-2507",
        "voxtral-mini-2602",
        "voxtral-mini-transcribe-3-0",
        "voxtral-mini-transcribe-3",
        "voxtral-mini-transcribe-latest",
        "voxtral-small-transcribe-3",
        "voxtral-small-transcribe-latest",
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        # realtime names (Mistral's and OpenAI's WebSocket models)
        "voxtral-mini-transcribe-realtime-2602",
        "voxtral-mini-transcribe-realtime-3-0",
        "voxtral-mini-transcribe-realtime-3",
        "voxtral-mini-transcribe-realtime-latest",
        "voxtral-mini-realtime-latest",
        "gpt-realtime-whisper",
        "gpt-live-transcribe",
        "gpt-transcribe",
        "gpt-4o-transcribe-diarize",
        "gpt-4o-mini-transcribe-2025-12-15",
    }
)
HOSTED_CHAT_MODELS = frozenset(
    {
        "voxtral-mini-latest",
        "voxtral-small-latest",
        "voxtral-mini-2507",
        "voxtral-small-2507",
        "gpt-4o-audio-preview",
        "gpt-4o-mini-audio-preview",
        "gpt-4o",
        "gpt-4o-mini",
        "mistral-small-latest",
        "mistral-medium-latest",
        "mistral-large-latest",
    }
)


@dataclass(frozen=True)
class AliasMatch:
    preset: Preset
    emotion: str | None


def resolve_alias(
    alias: str, presets: PresetCatalog, *, engine: str | None, pinned: Mapping[str, str]
) -> AliasMatch | None:
    """The local preset a hosted voice name stands for, or None when it is no known alias."""
    hosted = HOSTED_VOICES.get(alias)
    if alias in pinned:
        target = presets.get(pinned[alias])
        return AliasMatch(target, hosted.emotion if hosted else None) if target else None
    if hosted is None:
        return None
    candidates = presets.for_engine(engine) if engine else presets.all()
    if alias == EXAMPLE_VOICE_ID:
        preset = preferred_voice(candidates, "en")
        return AliasMatch(preset, None) if preset else None
    preset = _best(candidates, hosted)
    return AliasMatch(preset, hosted.emotion) if preset else None


def _best(candidates: list[Preset], hosted: HostedVoice) -> Preset | None:
    same_language = [
        p for p in candidates if languages_overlap(p.voice.languages, (hosted.language,))
    ]
    for preset in same_language:
        if preset.voice.gender == hosted.gender:
            return preset
    if same_language:
        return same_language[0]
    return candidates[0] if candidates else None
