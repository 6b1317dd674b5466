"""Turn detection: who is speaking, and when a turn ends, from voice-activity probabilities.

Mistral's realtime turn events and OpenAI's server VAD are both this state machine over one
probability per 32 ms frame (Silero VAD):

- ``start``: the probability reaches ``start_threshold`` while idle;
- ``eager_end``: it has stayed below ``eager_end_threshold`` for half of ``min_silence_ms``
  (an early hint that the speaker may be done: an agent can start thinking);
- ``resume``: after an eager end, it reaches ``start_threshold`` again;
- ``end``: below ``end_threshold`` for ``min_silence_ms`` (reason ``threshold``), or below
  ``eager_end_threshold`` for ``end_timeout_ms`` without falling that low (reason ``timeout``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

TurnKind = Literal["start", "eager_end", "resume", "end"]
EndReason = Literal["threshold", "timeout"]


@dataclass(frozen=True)
class TurnSettings:
    start_threshold: float = 0.5
    eager_end_threshold: float = 0.5
    end_threshold: float = 0.33
    min_silence_ms: int = 500
    end_timeout_ms: int = 3000
    """Mistral's documented server default."""


@dataclass(frozen=True)
class TurnEvent:
    kind: TurnKind
    time_s: float
    """Session time of the event: the start of speech for ``start``, the start of the quiet
    stretch for ``eager_end``/``end``, the resumed speech for ``resume``."""
    end_reason: EndReason | None = None


class TurnDetector:
    """Feed it frame probabilities in order; it returns the turn events they cause.

    Invariants: events alternate start ... end (``eager_end``/``resume`` only inside a turn,
    ``resume`` only after ``eager_end``); every ``start`` is followed by exactly one ``end``
    before the next ``start``.
    """

    def __init__(self, settings: TurnSettings, frame_seconds: float) -> None:
        self._s = settings
        self._frame = frame_seconds
        self._frames = 0
        self._speaking = False
        self._eager = False
        self._quiet_since: float | None = None
        self._silent_since: float | None = None

    @property
    def speaking(self) -> bool:
        """Inside a turn (started, not yet ended)."""
        return self._speaking

    def feed(self, probabilities: Iterable[float]) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for p in probabilities:
            start = self._frames * self._frame
            self._frames += 1
            event = self._judge(p, start) if self._speaking else self._idle(p, start)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> TurnEvent | None:
        """The audio ended: close an open turn (reason ``threshold``, at the quiet stretch's
        start if there is one)."""
        if not self._speaking:
            return None
        now = self._frames * self._frame
        return self._end(self._quiet_since if self._quiet_since is not None else now, "threshold")

    def _idle(self, p: float, start: float) -> TurnEvent | None:
        if p < self._s.start_threshold:
            return None
        self._speaking, self._eager = True, False
        self._quiet_since = self._silent_since = None
        return TurnEvent("start", start)

    def _judge(self, p: float, start: float) -> TurnEvent | None:
        if p >= self._s.start_threshold:
            self._quiet_since = self._silent_since = None
            if self._eager:
                self._eager = False
                return TurnEvent("resume", start)
            return None
        if p >= self._s.eager_end_threshold:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = start
        if p < self._s.end_threshold:
            self._silent_since = start if self._silent_since is None else self._silent_since
        else:
            self._silent_since = None
        return self._after_quiet(start + self._frame)

    def _after_quiet(self, now: float) -> TurnEvent | None:
        s = self._s
        if self._silent_since is not None and now - self._silent_since >= s.min_silence_ms / 1000:
            return self._end(self._silent_since, "threshold")
        if self._quiet_since is None:
            return None
        quiet = now - self._quiet_since
        if quiet >= s.end_timeout_ms / 1000:
            return self._end(self._quiet_since, "timeout")
        if not self._eager and quiet >= s.min_silence_ms / 2000:
            self._eager = True
            return TurnEvent("eager_end", self._quiet_since)
        return None

    def _end(self, at: float, reason: EndReason) -> TurnEvent:
        self._speaking = self._eager = False
        self._quiet_since = self._silent_since = None
        return TurnEvent("end", at, reason)
