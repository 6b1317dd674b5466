"""Realtime sessions as services: admission (session limits), engine choice, metering.

The WebSocket adapters ask ``SessionGate.admit`` before they accept a socket (beyond a limit
the handshake is refused with 429), then open a ``TranscriptionSession`` through
``RealtimeTranscriptionService.session``: its decode steps hold an engine slot (fair across
sessions), its voice-activity detection runs off the event loop, and the session leaves one
usage record, metered in audio seconds, when it ends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from voxserve.audio.types import Samples
from voxserve.core.engine_choice import EngineChoice
from voxserve.core.realtime_stt import RealtimeSTTConfig, Step, TranscriptionSession
from voxserve.core.transcription import normalise_language
from voxserve.core.usage import UsageService
from voxserve.engines.handles import STTHandle
from voxserve.engines.manager import EngineManager
from voxserve.engines.protocol import TranscriptionOptions
from voxserve.engines.streaming import StreamUpdate, STTStream
from voxserve.engines.vad import FRAME_SECONDS, SileroVAD
from voxserve.errors import Overloaded, Unsupported
from voxserve.offload import run_in_thread
from voxserve.settings import RealtimeSettings

STT_ENDPOINT = "realtime_transcription"
STREAMING_DELAY_RANGE_MS = (240, 2400)
"""``target_streaming_delay_ms`` taken: a decode step is at least 0.5 s of audio on CPU (below
480 ms the text runs a step behind anyway)."""


class SessionGate:
    """Counts open realtime sessions, server-wide and per owner.

    Invariant: at most ``total`` sessions, and ``per_owner`` of one owner, hold admission.
    """

    def __init__(self, settings: RealtimeSettings) -> None:
        self.settings = settings
        self._total = settings.max_sessions
        self._per_owner = settings.max_sessions_per_owner
        self._open: Counter[str] = Counter()

    @property
    def open_sessions(self) -> int:
        return sum(self._open.values())

    @contextmanager
    def admit(self, owner_id: str) -> Iterator[None]:
        """Hold one session's place for the duration of the block.

        Raises:
            Overloaded: the server's or the owner's limit is reached.
        """
        if self.open_sessions >= self._total:
            raise Overloaded("The server has no room for another realtime session.", retry_after=5)
        if self._open[owner_id] >= self._per_owner:
            raise Overloaded(
                f"At most {self._per_owner} realtime sessions may be open at once per key.",
                retry_after=5,
            )
        self._open[owner_id] += 1
        try:
            yield
        finally:
            self._open[owner_id] -= 1
            if not self._open[owner_id]:
                del self._open[owner_id]


class RealtimeTranscriptionService:
    """Realtime speech to text for the Mistral and OpenAI WebSocket shapes.

    Args:
        engines: the manager (streams and their slot-holding steps).
        choice: the one engine-choice policy (hosted realtime names resolve to the default).
        usage: metering (one record per session, in audio seconds).
        settings: the realtime section (limits, idle timeout).
        vad: the shared voice-activity model (each session keeps its own state).
    """

    def __init__(
        self,
        engines: EngineManager,
        choice: EngineChoice,
        usage: UsageService,
        settings: RealtimeSettings,
        vad: SileroVAD | None = None,
    ) -> None:
        self._engines = engines
        self._choice = choice
        self._usage = usage
        self.settings = settings
        self.gate = SessionGate(settings)
        self._vad = vad or SileroVAD()

    def pick_engine(self, model: str | None) -> STTHandle:
        """The engine for ``model``, checked able to stream.

        Raises:
            InvalidRequest: an unknown model. Unsupported: an engine that cannot stream (the
                message names what is needed). ServiceUnavailable: not installed.
        """
        engine = self._choice.transcription(model)
        self._engines.open_stt_stream(engine.name, TranscriptionOptions())  # checks, no work
        return engine

    @asynccontextmanager
    async def session(
        self, owner_id: str, engine: STTHandle, config: RealtimeSTTConfig
    ) -> AsyncIterator[TranscriptionSession]:
        """A session on ``engine``; metered (audio seconds) and closed when the block ends.

        Raises:
            PaymentRequired: the owner's balance is exhausted (checked before any audio).
        """
        name = engine.name

        def open_stream(final: RealtimeSTTConfig) -> STTStream:
            options = TranscriptionOptions(
                language=normalise_language(final.language), hotwords=final.context_bias
            )
            return self._engines.open_stt_stream(name, options)

        async def run(step: Step, audio: Samples) -> StreamUpdate:
            return await self._engines.run_stream_step(name, step, audio)

        vad = self._vad.stream()

        async def voice_activity(samples: Samples) -> list[float]:
            return await run_in_thread(vad.feed, samples)

        session = TranscriptionSession(
            open_stream,
            run,
            config,
            voice_activity=voice_activity,
            frame_seconds=FRAME_SECONDS,
            check=lambda final: check_config(engine, final),
        )
        async with self._usage.metered(owner_id, STT_ENDPOINT) as meter:
            meter.engine = name
            try:
                yield session
            finally:
                await session.close()
                meter.audio_seconds = session.audio_seconds


def check_config(engine: STTHandle, config: RealtimeSTTConfig) -> None:
    """Refuse settings the engine would silently drop (it reports what it can do).

    Raises:
        Unsupported: ``context_bias`` for an engine without hotwords (vLLM's realtime
            dialect, for one, has no field for it).
    """
    if config.context_bias and not engine.capabilities.hotwords:
        raise Unsupported(
            f"{engine.name} cannot bias its recognition towards words: context_bias needs an "
            "engine with hotwords, such as faster-whisper (voxserve models pull "
            "faster-whisper-base); leave context_bias empty for this model.",
            field="context_bias",
        )
