"""The Voxtral-style named presets of the ``/api/tts`` gateway: voice families (Paul, Jane...)
with one stable id per emotional variant, each served by an installed voice.

Ids are UUIDs derived from the Voxtral 2 name (``en_paul_happy``), so they never change between
servers or releases. ``EXAMPLE_VOICE_ID``, the id every example of the gateway document uses,
is the default English preset (``presets.preferred_voice``), so those examples run verbatim.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

EXAMPLE_VOICE_ID = "82c99ee6-f932-423f-a4a3-d403c8914b8d"
"""The example voice of the gateway document: the default English preset here."""
_NAMESPACE = uuid.UUID("5b3c8e0e-6c3f-4a53-9d0f-6f1b6b1f2a11")


def variant_id(hosted_name: str) -> str:
    """The stable id of one variant (``en_paul_happy``)."""
    return str(uuid.uuid5(_NAMESPACE, hosted_name))


@dataclass(frozen=True)
class PresetFamily:
    name: str
    prefix: str
    """The Voxtral 2 prefix: ``en_paul`` names ``en_paul_neutral``, ``en_paul_happy``..."""
    language: str
    gender: str
    emotions: tuple[str, ...]

    def variants(self) -> dict[str, str]:
        """Emotion -> stable id."""
        return {e: variant_id(f"{self.prefix}_{e}") for e in self.emotions}

    def hosted_names(self) -> dict[str, str]:
        """Stable id -> the Voxtral 2 name it stands for."""
        return {variant_id(f"{self.prefix}_{e}"): f"{self.prefix}_{e}" for e in self.emotions}


FAMILIES: tuple[PresetFamily, ...] = (
    PresetFamily(
        "Jane",
        "gb_jane",
        "en",
        "female",
        tuple(
            [
                "neutral",
                "confident",
                "curious",
                "confused",
                "sarcasm",
                "sad",
                "shameful",
                "jealousy",
                "frustrated",
            ]
        ),
    ),
    PresetFamily(
        "Paul",
        "en_paul",
        "en",
        "male",
        tuple(
            ["neutral", "happy", "cheerful", "excited", "confident", "sad", "frustrated", "angry"]
        ),
    ),
    PresetFamily(
        "Oliver",
        "gb_oliver",
        "en",
        "male",
        tuple(["neutral", "cheerful", "excited", "confident", "curious", "sad", "angry"]),
    ),
    PresetFamily(
        "Marie",
        "fr_marie",
        "fr",
        "female",
        tuple(["neutral", "happy", "excited", "curious", "sad", "angry"]),
    ),
)


def family_variant_names() -> dict[str, str]:
    """Every variant's stable id -> its Voxtral 2 name (an alias speech resolves)."""
    return {k: v for family in FAMILIES for k, v in family.hosted_names().items()}
