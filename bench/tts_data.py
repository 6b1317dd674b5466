"""What the speech benchmark speaks and records: the texts, the engines it can measure, and one
``Sample`` per request (or per raw synthesis of a text).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import ratio

TEXTS: dict[str, str] = {
    "short": (
        "Thank you for calling the city library. "
        "Our opening hours have changed for the summer season."
    ),
    "medium": (
        "The old lighthouse stood at the edge of the cliff for more than a century. "
        "Every night its beam swept across the dark water, warning ships away from the rocks. "
        "The keeper climbed the spiral stairs twice a day to trim the wick and polish the lens. "
        "In winter storms, spray rattled against the lantern room windows."
    ),
    "medium2": (
        "To reset your router, first unplug it from the wall and wait for thirty seconds. "
        "Then plug it back in and watch the lights on the front panel. "
        "When the internet light turns solid green, your connection is ready. "
        "If it keeps blinking orange, call our support line and have your account number ready."
    ),
    "long": (
        "The history of timekeeping is a story of ever finer divisions. "
        "Early farmers watched the sun and the seasons, and that was precise enough for planting "
        "and harvest. "
        "Sundials split the day into hours, but they were useless at night and under clouds. "
        "Water clocks filled that gap, dripping at a steady rate through a small hole in a "
        "stone vessel. "
        "In the middle ages, mechanical clocks appeared in church towers, driven by falling "
        "weights and regulated by a swinging bar. "
        "They were loud and often wrong by a quarter of an hour each day. "
        "The pendulum changed everything in the seventeenth century, cutting the error to a few "
        "seconds. "
        "Sailors still struggled, because a pendulum cannot keep time on a rolling ship, and "
        "without accurate time they could not find their longitude. "
        "A carpenter named John Harrison spent decades building sea clocks that finally solved "
        "the problem. "
        "Today, atomic clocks lose less than a second in millions of years, and the phone in "
        "your pocket quietly checks them many times a day."
    ),
}


@dataclass(frozen=True)
class EngineChoice:
    name: str
    voice: str
    """Engine-local voice id, for the raw engine."""

    @property
    def public_voice(self) -> str:
        return f"{self.name}:{self.voice}"


ENGINES = {
    "piper": EngineChoice("piper", "en_US-joe-medium"),
    "espeak": EngineChoice("espeak", "en-us"),
}


@dataclass(frozen=True)
class Sample:
    """One request (or one raw synthesis of a text)."""

    mode: str
    clients: int
    text: str
    client: int
    ttfa: float
    """Seconds from sending (or starting) to the first audio."""
    wall: float
    audio_seconds: float

    @property
    def rtf(self) -> float:
        return ratio(self.wall, self.audio_seconds)
