"""What to install for an engine that is not there: one text per engine, used everywhere.

The same words reach a client in a 503 (a known model whose engine is not installed), the
operator in the startup log, and the reader of the README. Names are engine names (``piper``,
``faster-whisper-base``) or catalogue model names (``piper-en_US-joe-medium``,
``qwen2.5-1.5b-instruct``: what ``voxserve models pull`` takes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Kind = Literal["tts", "stt", "chat"]

KIND_LABELS: dict[Kind, str] = {"tts": "speech", "stt": "transcription", "chat": "chat"}
"""How each kind is named in messages (the manager's ``EngineKind`` values)."""

DEFAULT_SETTINGS: dict[Kind, str] = {
    "tts": "VOXSERVE_ENGINES__DEFAULT_TTS",
    "stt": "VOXSERVE_ENGINES__DEFAULT_STT",
    "chat": "VOXSERVE_ENGINES__DEFAULT_CHAT",
}

_LLAMA = "scripts/install --llama, then voxserve models pull"

ENGINE_HINTS: dict[str, tuple[Kind, str]] = {
    "piper": ("tts", "voxserve models pull piper-en_US-joe-medium"),
    "pocket-tts": ("tts", "scripts/install --pocket, then voxserve models pull pocket-tts"),
    "espeak": ("tts", "espeak is built in: reinstall voxserve (scripts/install)"),
    "remote-tts": ("tts", "set VOXSERVE_REMOTE__TTS_URL to a Voxtral server on vLLM-Omni"),
    "pocketsphinx": ("stt", "pocketsphinx is built in: reinstall voxserve (scripts/install)"),
    "remote-stt": ("stt", "set VOXSERVE_REMOTE__STT_URL to an OpenAI-compatible server"),
    "remote-chat": ("chat", "set VOXSERVE_REMOTE__CHAT_URL to an OpenAI-compatible server"),
}
"""Engines whose name is fixed, and what installs each. Others are named after their model
(``faster-whisper-base``, ``qwen2.5-1.5b-instruct``) and are pulled by that name."""

KIND_HINTS: dict[Kind, tuple[str, str]] = {
    "tts": ("piper", "remote-tts"),
    "stt": ("faster-whisper-base", "remote-stt"),
    "chat": ("qwen2.5-1.5b-instruct", "remote-chat"),
}
"""What to install when no engine of a kind is there: a local engine, or a remote server."""


def install_hint(name: str, kind: Kind) -> str:
    """What installs the engine or model called ``name`` (a command line, or a setting).

    Models are pulled by their own name; a chat model also needs llama.cpp, a Pocket TTS model
    the pocket-tts extra.
    """
    fixed = ENGINE_HINTS.get(name)
    if fixed is not None:
        return fixed[1]
    if kind == "chat":
        return f"{_LLAMA} {name}"
    if name.startswith("pocket-tts"):
        return ENGINE_HINTS["pocket-tts"][1]
    return f"voxserve models pull {name}"


def no_engine_message(kind: Kind) -> str:
    """The 503 for a kind with no engine installed at all."""
    local, remote = (install_hint(name, kind) for name in KIND_HINTS[kind])
    return f"No {KIND_LABELS[kind]} engine is installed. To install one: {local}; or {remote}."


def not_installed_message(kind: Kind, name: str) -> str:
    """The 503 for a known engine or model that is not installed here."""
    return (
        f"The {KIND_LABELS[kind]} model '{name}' is known but not installed here. "
        f"To install it: {install_hint(name, kind)}."
    )


def missing_default_message(kind: Kind, name: str, known: Mapping[str, Kind]) -> str:
    """The 503 for a configured default engine that is not installed."""
    head = (
        f"The default {KIND_LABELS[kind]} engine '{name}' ({DEFAULT_SETTINGS[kind]}) is not "
        "installed."
    )
    if name in known or name in ENGINE_HINTS:
        return f"{head} To install it: {install_hint(name, kind)}."
    return f"{head} Set {DEFAULT_SETTINGS[kind]} to an installed engine, or unset it."


def known_names(catalogue: Mapping[str, Kind] | None = None) -> dict[str, Kind]:
    """Every name a client may use for an engine that could be installed: the fixed engine names
    plus the catalogue's model names (``catalogue`` maps a model name to its kind)."""
    names: dict[str, Kind] = {name: kind for name, (kind, _) in ENGINE_HINTS.items()}
    names.update(catalogue or {})
    return names
