"""Engine handles: what the rest of voxserve knows of an engine, without holding the engine.

A handle is an immutable snapshot (name, version, kind, capabilities) that the manager takes off
the event loop: when the engine is registered, after each load, and after each synthesis (a remote
engine learns its voices then). Core reads handles freely on the loop; it never calls an engine
method itself. Work goes through the ``EngineManager`` by the handle's ``name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from voxserve.engines.protocol import ChatCapabilities, STTCapabilities, TTSCapabilities

EngineKind = Literal["tts", "stt", "chat"]
C = TypeVar("C", TTSCapabilities, STTCapabilities, ChatCapabilities)


@dataclass(frozen=True)
class EngineHandle(Generic[C]):
    """One engine as core sees it: immutable, cheap to read on the event loop."""

    name: str
    """The engine name (``piper``, ``faster-whisper-base``): model ids and voice ids use it."""
    version: str
    """Changes whenever a stored voice state would no longer fit."""
    kind: EngineKind
    capabilities: C
    """The capabilities as of the last snapshot (a remote engine's voices may grow later)."""


TTSHandle = EngineHandle[TTSCapabilities]
STTHandle = EngineHandle[STTCapabilities]
ChatHandle = EngineHandle[ChatCapabilities]
