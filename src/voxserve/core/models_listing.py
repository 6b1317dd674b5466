"""Every model this server can serve right now: one per installed engine, with what it can do.

The hosted names that resolve to an engine (``whisper-1``, ``voxtral-small-latest``...) are listed
as that engine's aliases, so a client that checks a model name against the list finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from voxserve.core.aliases import HOSTED_CHAT_MODELS, HOSTED_STT_MODELS, HOSTED_TTS_MODELS
from voxserve.core.chat import ChatService
from voxserve.core.speech import SpeechService
from voxserve.core.transcription import TranscriptionService
from voxserve.engines.handles import ChatHandle, EngineHandle, STTHandle, TTSHandle
from voxserve.engines.manager import EngineManager
from voxserve.errors import NotFound, VoxError

ModelKind = Literal["speech", "transcription", "chat"]


@dataclass(frozen=True)
class ModelInfo:
    """One servable model (an engine) and its capabilities."""

    id: str
    """The engine name; pass it as ``model`` to pick this engine."""
    kind: ModelKind
    default: bool
    """Hosted model names of this kind resolve to this engine."""
    aliases: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    """ISO-639-1 codes; empty means any the model knows."""
    voices: int = 0
    """Speech: preset voices."""
    cloning: bool = False
    """Speech: custom voices and one-off ``ref_audio`` cloning."""
    language_detection: bool = False
    word_timestamps: bool = False
    hotwords: bool = False
    diarization: bool = False
    translation: bool = False
    """Transcription: translates speech in other languages to English (``/audio/translations``)."""
    realtime: bool = False
    """Transcription: serves realtime sessions (streaming needs word timestamps); speech:
    always (realtime speech speaks through the same engines)."""
    context_length: int | None = None
    """Chat: tokens of conversation plus answer."""
    audio_native: bool = False
    """Chat: the model hears audio itself (else it reads transcripts)."""

    @property
    def description(self) -> str:
        if self.kind == "speech":
            return f"Text to speech, {self.voices} preset voices" + (
                ", voice cloning" if self.cloning else ""
            )
        if self.kind == "transcription":
            return "Speech to text" + (", language detection" if self.language_detection else "")
        how = "heard natively" if self.audio_native else "through transcripts"
        return f"Chat with audio input ({how}), {self.context_length} tokens of context"


class ModelListing:
    """Builds the list from the engines' handles and the services that choose the default of
    each kind (through the one engine-choice policy). Reads snapshots only: nothing blocks."""

    def __init__(
        self,
        engines: EngineManager,
        speech: SpeechService,
        transcription: TranscriptionService,
        chat: ChatService,
    ) -> None:
        self._engines = engines
        self._speech = speech
        self._transcription = transcription
        self._chat = chat

    def models(self) -> list[ModelInfo]:
        """Speech, then transcription, then chat models, each kind best engine first."""
        tts = _default_name(lambda: self._speech.default_engine())
        stt = _default_name(lambda: self._transcription.pick_engine(None))
        chat = _default_name(lambda: self._chat.pick_engine(None))
        return [
            *(_speech(h, h.name == tts) for h in self._engines.tts_handles()),
            *(
                _transcription(h, h.name == stt, self._transcription.can_diarize(h))
                for h in self._engines.stt_handles()
            ),
            *(_chat(h, h.name == chat) for h in self._engines.chat_handles()),
        ]

    def model(self, model_id: str) -> ModelInfo:
        """The model with this id, else the one a hosted name resolves to.

        Raises:
            NotFound: no such model.
        """
        models = self.models()
        found = next((m for m in models if m.id == model_id), None)
        found = found or next((m for m in models if model_id in m.aliases), None)
        if found is None:
            raise NotFound(f"Model '{model_id}' not found.")
        return found


def _default_name(pick: Callable[[], EngineHandle[Any]]) -> str | None:
    try:
        return pick().name
    except VoxError:
        # Nothing installed for this kind, or a default configured wrongly: no aliases then.
        return None


def _speech(engine: TTSHandle, default: bool) -> ModelInfo:
    caps = engine.capabilities
    return ModelInfo(
        id=engine.name,
        kind="speech",
        default=default,
        aliases=tuple(sorted(HOSTED_TTS_MODELS)) if default else (),
        languages=caps.languages,
        voices=len(caps.voices),
        cloning=caps.cloning,
        realtime=True,
    )


def _transcription(engine: STTHandle, default: bool, diarization: bool) -> ModelInfo:
    caps = engine.capabilities
    return ModelInfo(
        id=engine.name,
        kind="transcription",
        default=default,
        aliases=tuple(sorted(HOSTED_STT_MODELS)) if default else (),
        languages=caps.languages,
        language_detection=caps.language_detection,
        word_timestamps=caps.word_timestamps,
        hotwords=caps.hotwords,
        diarization=diarization,
        translation=caps.translation,
        realtime=caps.word_timestamps,
    )


def _chat(engine: ChatHandle, default: bool) -> ModelInfo:
    caps = engine.capabilities
    served = tuple(m for m in caps.models if m != engine.name)
    hosted = tuple(sorted(HOSTED_CHAT_MODELS)) if default else ()
    return ModelInfo(
        id=engine.name,
        kind="chat",
        default=default,
        aliases=served + hosted,
        context_length=caps.context_length,
        audio_native=caps.audio_input,
    )
