"""Turn detection over frame probabilities (32 ms frames)."""

from __future__ import annotations

from voxserve.core.turns import TurnDetector, TurnSettings

FRAME = 0.032


def frames(seconds: float, p: float) -> list[float]:
    return [p] * round(seconds / FRAME)


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]


def test_speech_then_silence_is_one_turn_ending_on_threshold() -> None:
    detector = TurnDetector(TurnSettings(), FRAME)
    events = detector.feed(frames(0.5, 0.0) + frames(1.0, 0.9) + frames(1.0, 0.05))
    assert kinds(events) == ["start", "eager_end", "end"]
    start, _, end = events
    assert abs(start.time_s - 0.5) < FRAME
    assert abs(end.time_s - 1.5) < FRAME
    assert end.end_reason == "threshold"
    assert not detector.speaking


def test_short_pause_resumes_the_turn() -> None:
    detector = TurnDetector(TurnSettings(), FRAME)
    events = detector.feed(frames(1.0, 0.9) + frames(0.35, 0.1) + frames(1.0, 0.9))
    assert kinds(events) == ["start", "eager_end", "resume"]
    assert detector.speaking


def test_hesitant_murmur_ends_by_timeout() -> None:
    settings = TurnSettings(end_timeout_ms=1000)
    detector = TurnDetector(settings, FRAME)
    # Between end_threshold and eager_end_threshold: quiet, never silent.
    events = detector.feed(frames(1.0, 0.9) + frames(2.0, 0.4))
    assert kinds(events) == ["start", "eager_end", "end"]
    assert events[-1].end_reason == "timeout"


def test_two_utterances_make_two_turns() -> None:
    detector = TurnDetector(TurnSettings(), FRAME)
    audio = frames(1.0, 0.9) + frames(1.5, 0.0) + frames(1.0, 0.9) + frames(1.0, 0.0)
    assert kinds(detector.feed(audio)) == ["start", "eager_end", "end"] * 2


def test_finish_closes_an_open_turn() -> None:
    detector = TurnDetector(TurnSettings(), FRAME)
    detector.feed(frames(1.0, 0.9))
    event = detector.finish()
    assert event is not None and event.kind == "end"
    assert detector.finish() is None
