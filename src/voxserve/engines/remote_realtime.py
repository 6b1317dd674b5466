"""Realtime transcription forwarded to a vLLM server's ``/v1/realtime`` WebSocket (vLLM serving
Voxtral Realtime), translated into the ``STTStream`` a realtime session drives.

vLLM's dialect, as ``vllm/entrypoints/openai/realtime/{protocol,connection}.py`` implement it:

    server  session.created {id, created}
    client  session.update {model, language?}      names the model; required before a commit
    client  input_audio_buffer.commit              starts a generation over the audio to come
    client  input_audio_buffer.append {audio}      base64 PCM16 mono (16 kHz for Voxtral)
    client  input_audio_buffer.commit {final: true}  that generation's audio is complete
    server  transcription.delta {delta}            new text: token pieces, not whole words
    server  transcription.done {text, usage}       the generation's text; the next commit
                                                   starts another
    server  error {error: str, code: str | None}

What a session's settings become there: ``language`` goes in ``session.update`` (vLLM's
``SessionUpdate`` has ``model``, ``temperature`` and ``language``; a server too old to know
``language`` ignores it, as its request models ignore unknown fields); context bias has no
field in vLLM's dialect, so the engine reports no hotwords and the session answers a
``context_bias`` with an error event before any audio (core/realtime.py). Temperature stays
vLLM's default, 0 (greedy), as for local streaming.

The stream asks for every chunk (``step_seconds``): each step sends the audio at once and
passes on the deltas that have arrived, so text follows the remote model's own pace, not a
local decode step's. While a generation is open the stream is ``awaiting``: the session steps
it with no audio every ``step_seconds`` too, so deltas the model sends after the client's last
chunk (it is still working on audio already sent) go on to the client at once.

One generation is one segment: ``step`` sends audio and returns the whole words received so
far (a word is released once the text after it has begun, since a delta may end inside a
word); ``commit`` ends the generation, waits for ``transcription.done`` and returns the rest
with the segment. vLLM gives no timestamps: a word is stamped with the audio time at which it
arrived. The methods block on the network (the websockets sync client, whose own thread reads
frames meanwhile): the session runs them off the event loop like any stream's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from voxserve.audio.types import Samples
from voxserve.engines.protocol import Segment, Word
from voxserve.engines.remote_http import RemoteUnreachable
from voxserve.engines.streaming import StreamUpdate
from voxserve.errors import EngineFailure

RATE = 16000
STEP_SECONDS = 0.1
"""How much audio a session gathers before a step: one client chunk (a native streaming model
wants its audio now; a step costs no decode here)."""
Connect = Callable[[], ClientConnection]
"""Opens the session's socket (a pool routes it to one backend, once per session)."""


def realtime_url(base_url: str) -> str:
    """``http://gpu:8000/v1`` -> ``ws://gpu:8000/v1/realtime``."""
    base = base_url.rstrip("/")
    scheme, rest = base.split("://", 1) if "://" in base else ("http", base)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/realtime"


def open_socket(base_url: str, api_key: str | None, timeout: float) -> ClientConnection:
    """Connect to ``{base}/realtime`` and read its ``session.created``.

    Raises:
        RemoteUnreachable: the server cannot be reached or refuses the socket.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    try:
        ws = connect(realtime_url(base_url), additional_headers=headers, open_timeout=timeout)
    except (OSError, WebSocketException, TimeoutError) as exc:
        raise RemoteUnreachable(f"The realtime server {base_url} cannot be reached: {exc}") from exc
    try:
        _expect_created(ws, timeout)
    except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
        ws.close()
        raise RemoteUnreachable(
            f"The realtime server {base_url} did not open a session: {exc}"
        ) from exc
    except BaseException:
        ws.close()
        raise
    return ws


def _expect_created(ws: ClientConnection, timeout: float) -> None:
    event = json.loads(ws.recv(timeout=timeout))
    kind = event.get("type") if isinstance(event, dict) else None
    if kind != "session.created":
        raise RemoteUnreachable(f"The realtime server opened with {kind!r}.")


class RemoteRealtimeStream:
    """One session's stream on a vLLM realtime server (an ``STTStream``).

    Invariants: at most one generation is open; the socket opens on the first call (opening
    the stream object costs nothing, so engines can be checked with it); words are released in
    order and never revised.
    """

    step_seconds = STEP_SECONDS

    def __init__(
        self,
        connect_socket: Connect,
        model: str | None,
        *,
        timeout: float,
        language: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._connect = connect_socket
        self._language = language
        self._on_close = on_close
        """Called once when the stream closes (a pool ends the session's lease)."""
        self._model = model
        self._timeout = timeout
        self._ws: ClientConnection | None = None
        self._generating = False
        self._received = 0
        self._text = ""
        """Text of the open generation not yet released as words."""
        self._words: list[Word] = []
        """Words of the open segment released so far."""
        self._done: str | None = None

    @property
    def audio_seconds(self) -> float:
        return self._received / RATE

    @property
    def awaiting(self) -> bool:
        return self._generating

    def step(self, audio: Samples) -> StreamUpdate:
        self._send_audio(audio)
        self._drain(timeout=0)
        return StreamUpdate(tuple(self._release(final=False)))

    def commit(self, audio: Samples) -> StreamUpdate:
        self._send_audio(audio)
        if not self._generating:
            return StreamUpdate()
        self._send({"type": "input_audio_buffer.commit", "final": True})
        while self._done is None:
            self._drain(timeout=self._timeout)
        words = self._release(final=True)
        segment_words, self._words = tuple(self._words), []
        self._generating, self._done, self._text = False, None, ""
        if not segment_words:
            return StreamUpdate(tuple(words))
        text = " ".join(w.word.strip() for w in segment_words)
        end = self.audio_seconds
        return StreamUpdate(
            tuple(words), None, Segment(text, segment_words[0].start, end, segment_words)
        )

    def close(self) -> None:
        """Close the socket (the remote stops its generation)."""
        if self._ws is not None:
            self._ws.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def _socket(self) -> ClientConnection:
        if self._ws is None:
            self._ws = self._connect()
            update: dict[str, Any] = {"type": "session.update", "model": self._model}
            if self._language:
                update["language"] = self._language
            self._send(update)
        return self._ws

    def _send_audio(self, audio: Samples) -> None:
        if not len(audio):
            return
        if not self._generating:
            self._send({"type": "input_audio_buffer.commit"})  # opens the next generation
            self._generating = True
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        self._send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})
        self._received += len(audio)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._socket().send(json.dumps(message))
        except ConnectionClosed as exc:
            raise EngineFailure(f"The realtime server closed the session: {exc}") from exc

    def _drain(self, timeout: float) -> None:
        """Take every event that has arrived (waiting up to ``timeout`` for the first)."""
        ws = self._socket()
        while True:
            try:
                raw = ws.recv(timeout=timeout)
            except TimeoutError:
                if timeout:
                    raise EngineFailure("The realtime server did not finish in time.") from None
                return
            except ConnectionClosed as exc:
                raise EngineFailure(f"The realtime server closed the session: {exc}") from exc
            self._take(json.loads(raw))
            if self._done is not None:
                return
            timeout = 0

    def _take(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "transcription.delta":
            self._text += str(event.get("delta", ""))
        elif kind == "transcription.done":
            self._done = str(event.get("text", ""))
        elif kind == "error":
            raise EngineFailure(f"The realtime server failed: {event.get('error')}")

    def _release(self, *, final: bool) -> list[Word]:
        """Whole words of the text received; all of it when ``final``."""
        tokens = self._text.split()
        keep = "" if final or not tokens or self._text[-1:].isspace() else tokens.pop()
        self._text = keep
        at = self.audio_seconds
        words = [Word(" " + token, at, at) for token in tokens]
        self._words.extend(words)
        return words
