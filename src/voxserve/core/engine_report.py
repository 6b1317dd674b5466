"""What the startup log says about engines: which serve which voices and models, the default of
each kind, and what to install for what is missing (the install hints of ``engine_hints``, the
same words a client gets in a 503 and the README gives)."""

from __future__ import annotations

from dataclasses import dataclass, field

from voxserve.core.engine_choice import EngineChoice
from voxserve.core.engine_hints import ENGINE_HINTS, install_hint
from voxserve.engines.handles import TTSHandle
from voxserve.engines.manager import EngineManager
from voxserve.errors import VoxError

SHOWN_VOICES = 5


@dataclass
class EngineReport:
    """Lines for the startup log, at info and warning level."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def engine_report(engines: EngineManager, choice: EngineChoice) -> EngineReport:
    """Every engine with what it serves, then the hints for what is missing."""
    report = EngineReport()
    try:
        default: str | None = choice.default("tts").name
    except VoxError as exc:  # none installed, or a configured default that is not
        report.warnings.append(f"no default speech engine: {exc.message}")
        default = None
    report.lines += [_speech_line(h, h.name == default) for h in engines.tts_handles()]
    report.lines += [f"transcription engine {h.name}" for h in engines.stt_handles()]
    report.lines += [f"chat engine {h.name}" for h in engines.chat_handles()]
    report.lines += better_engine_hints(engines)
    return report


def better_engine_hints(engines: EngineManager) -> list[str]:
    """What to install for what is missing."""
    tts = engines.tts_handles()
    names = {h.name for h in tts}
    hints = []
    if "piper" not in names and "pocket-tts" not in names:
        hints.append(f"for natural voices: {install_hint('piper', 'tts')}")
    if not any(h.capabilities.cloning for h in tts):
        hints.append(
            f"for voice cloning: {install_hint('pocket-tts', 'tts')} "
            f"(or {ENGINE_HINTS['remote-tts'][1]})"
        )
    if not any(h.name.startswith("faster-whisper") for h in engines.stt_handles()):
        hints.append(
            "for accurate multilingual transcription and translation: "
            f"{install_hint('faster-whisper-base', 'stt')}"
        )
    if not engines.chat_handles():
        hints.append(f"for chat: {install_hint('qwen2.5-1.5b-instruct', 'chat')}")
    return hints


def _speech_line(handle: TTSHandle, default: bool) -> str:
    caps = handle.capabilities
    ids = [f"{handle.name}:{voice.id}" for voice in caps.voices]
    more = len(ids) - SHOWN_VOICES
    shown = ", ".join(ids[:SHOWN_VOICES]) + (f" and {more} more" if more > 0 else "")
    return (
        f"speech engine {handle.name}"
        + (" (default: hosted model and voice names use it)" if default else "")
        + (", clones voices" if caps.cloning else "")
        + f": {len(ids)} preset voices ({shown or 'none listed yet'})"
    )
