"""The one engine-choice policy: which installed engine serves a request's ``model``.

Speech, transcription and chat (and realtime sessions) all ask here, in the same order:

1. no model, or a hosted name of the kind (``tts-1``, ``whisper-1``, ``voxtral-small-latest``):
   the default engine (below);
2. an installed engine's name (``piper``, ``faster-whisper-base``), or a model a chat engine
   serves (a remote server's model, a GGUF folder name): that engine;
3. a known name whose engine is not installed (``pocket-tts``, ``faster-whisper-small``, a
   catalogue model): ``ServiceUnavailable`` (503) with the install hint of ``engine_hints``;
4. anything else: ``InvalidRequest`` (400, field ``model``) listing the installed engines.

The default engine is the configured one (``settings.engines.default_*``; 503 with its install
hint when it is not installed), else the best installed (first, in discovery order); a request
that needs an ability (speech that clones, a translation) takes the best engine that has it.
No engine of the kind at all is a 503 that says what to install. The choice reads engine
handles only: nothing here blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voxserve.core.aliases import HOSTED_CHAT_MODELS, HOSTED_STT_MODELS, HOSTED_TTS_MODELS
from voxserve.core.engine_hints import (
    Kind,
    known_names,
    missing_default_message,
    no_engine_message,
    not_installed_message,
)
from voxserve.engines.handles import ChatHandle, EngineHandle, STTHandle, TTSHandle
from voxserve.engines.manager import EngineManager
from voxserve.errors import ServiceUnavailable
from voxserve.settings import EngineSettings

HOSTED_MODELS: dict[Kind, frozenset[str]] = {
    "tts": HOSTED_TTS_MODELS,
    "stt": HOSTED_STT_MODELS,
    "chat": HOSTED_CHAT_MODELS,
}


class EngineChoice:
    """Maps a model name to an installed engine's handle, identically for every kind.

    Args:
        engines: the manager whose handles are chosen from.
        settings: the engine section (the configured defaults).
        catalogue: model names ``voxserve models pull`` knows, with their kind: asking for one
            that is not installed is a 503 with its install hint rather than a 400.
    """

    def __init__(
        self,
        engines: EngineManager,
        settings: EngineSettings,
        catalogue: Mapping[str, Kind] | None = None,
    ) -> None:
        self._engines = engines
        self._settings = settings
        self._known = known_names(catalogue)

    def speech(
        self, model: str | None, *, voice_engine: str | None = None, cloning: bool = False
    ) -> TTSHandle:
        """The speech engine for ``model``; with no model (or a hosted one), the engine of the
        voice asked for (``voice_engine``, a preset's engine), else the default one (one that
        clones when ``cloning``).

        Raises:
            InvalidRequest: an unknown model. ServiceUnavailable: not installed (with the hint).
        """
        if self._names_engine("tts", model) or voice_engine is None:
            handle: TTSHandle = self._choose("tts", model, "cloning" if cloning else None)
            return handle
        return self._engines.tts_handle(voice_engine)

    def transcription(self, model: str | None, *, translation: bool = False) -> STTHandle:
        """The transcription engine for ``model`` (the default one that translates, when
        ``translation`` and no engine is named). Raises as ``speech``."""
        handle: STTHandle = self._choose("stt", model, "translation" if translation else None)
        return handle

    def chat(self, model: str | None) -> ChatHandle:
        """The chat engine for ``model``. Raises as ``speech``."""
        handle: ChatHandle = self._choose("chat", model)
        return handle

    def default(self, kind: Kind, *, needs: str | None = None) -> EngineHandle[Any]:
        """What hosted model names (and no model) use for ``kind``: with ``needs`` (a boolean
        capability such as ``cloning``), the best engine that has it, if any has.

        Raises:
            ServiceUnavailable: nothing of the kind is installed, or the configured default is
                not (each message says what to install).
        """
        handles = self._installed(kind)
        configured = self._configured(kind)
        if configured:
            found = _named(handles, configured)
            if found is None:
                raise ServiceUnavailable(missing_default_message(kind, configured, self._known))
            return found
        if needs:
            capable = [h for h in handles if getattr(h.capabilities, needs, False)]
            return capable[0] if capable else handles[0]
        return handles[0]

    def default_name(self, kind: Kind) -> str | None:
        """The default engine's name, or None when there is none (nothing installed, or a
        configured default that is not)."""
        try:
            return self.default(kind).name
        except ServiceUnavailable:
            return None

    # ------------------------------------------------------------------ internals

    def _names_engine(self, kind: Kind, model: str | None) -> bool:
        return bool(model) and model not in HOSTED_MODELS[kind]

    def _choose(self, kind: Kind, model: str | None, needs: str | None = None) -> Any:
        if not self._names_engine(kind, model):
            return self.default(kind, needs=needs)
        assert model is not None
        found = _named(self._installed(kind), model)
        if found is not None:
            return found
        if self._known.get(model) == kind:
            raise ServiceUnavailable(not_installed_message(kind, model), field="model")
        # The manager's lookup gives the one unknown-model answer (400 naming the engines).
        return self._engines.handle(kind, model)

    def _installed(self, kind: Kind) -> list[EngineHandle[Any]]:
        handles = self._engines.handles(kind)
        if not handles:
            raise ServiceUnavailable(no_engine_message(kind))
        return handles

    def _configured(self, kind: Kind) -> str | None:
        settings = self._settings
        return {
            "tts": settings.default_tts,
            "stt": settings.default_stt,
            "chat": settings.default_chat,
        }[kind]


def _named(handles: list[EngineHandle[Any]], name: str) -> EngineHandle[Any] | None:
    """The engine called ``name``, else a chat engine serving a model of that name."""
    found = next((h for h in handles if h.name == name), None)
    if found is not None:
        return found
    return next((h for h in handles if name in getattr(h.capabilities, "models", ())), None)
