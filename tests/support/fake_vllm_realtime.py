"""A fake of vLLM's realtime transcription WebSocket (``/v1/realtime``, the dialect of
``vllm/entrypoints/openai/realtime/connection.py``), for tests of forwarding: no model, a fixed
``script`` spoken back in token pieces as audio arrives.

Per generation (``input_audio_buffer.commit`` ... ``commit {final: true}``) it sends one piece of
the script for every 100 ms of 16 kHz PCM16 it receives (``delay`` seconds later, if set), the
rest at the final commit, then
``transcription.done`` with the whole script. Like vLLM it answers a commit before any
``session.update`` with ``model_not_validated``, and bad audio with ``invalid_audio``; its
``session.update`` takes vLLM's ``SessionUpdate`` fields (``model``, ``temperature``,
``language``) and, like vLLM's request models, ignores any other. It records what it received
(updates, appends, samples, sockets) for the test to check.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

PIECE_SAMPLES = 1600
UPDATE_FIELDS = ("type", "model", "temperature", "language")
"""vLLM's ``SessionUpdate`` (vllm/entrypoints/openai/realtime/protocol.py)."""


def pieces(text: str, size: int = 3) -> list[str]:
    """The script cut every ``size`` characters: pieces end inside words, as tokens do."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class FakeVLLMRealtimeServer:
    script: str = "Hello there general Kenobi"
    port: int = 0
    sessions: int = 0
    models: list[str | None] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Every ``session.update``, with only the fields vLLM's ``SessionUpdate`` knows."""
    appends: list[int] = field(default_factory=list)
    """The samples of every ``input_audio_buffer.append``, in order (all sockets)."""
    samples: list[int] = field(default_factory=list)
    """Per socket, the PCM16 samples it received."""
    generations: int = 0
    paths: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    closed: int = 0
    """Sockets that have ended (the client closed them or went away)."""
    delay: float = 0.0
    """Send each piece this long after the audio that earns it (a model still working on audio
    it has when the audio stops)."""
    fail_with: str | None = None
    """Answer the first audio with this ``error`` (``processing_error``), as vLLM does when
    its generation fails."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self._serve(ws)
        finally:
            self.closed += 1

    async def _serve(self, ws: ServerConnection) -> None:
        self.sessions += 1
        index = len(self.samples)
        self.samples.append(0)
        self.paths.append(ws.request.path if ws.request else "")
        self.auth.append(ws.request.headers.get("Authorization") if ws.request else None)
        await ws.send(json.dumps({"type": "session.created", "id": "sess-fake", "created": 0}))
        validated = False
        todo: list[str] | None = None
        owed = 0
        async for raw in ws:  # ends quietly when the client goes away
            event: dict[str, Any] = json.loads(raw)
            kind = event.get("type")
            if kind == "session.update":
                self.models.append(event.get("model"))
                self.updates.append({k: v for k, v in event.items() if k in UPDATE_FIELDS})
                validated = True
            elif kind == "input_audio_buffer.commit" and not validated:
                await self._error(ws, "Model not validated.", "model_not_validated")
            elif kind == "input_audio_buffer.commit" and not event.get("final"):
                todo, owed = pieces(self.script), 0
                self.generations += 1
            elif kind == "input_audio_buffer.commit":
                await asyncio.sleep(self.delay)  # after the pieces still on their way
                for piece in todo or []:
                    await ws.send(json.dumps({"type": "transcription.delta", "delta": piece}))
                done = {"type": "transcription.done", "text": self.script, "usage": {}}
                await ws.send(json.dumps(done))
                todo = None
            elif kind == "input_audio_buffer.append":
                try:
                    audio = np.frombuffer(base64.b64decode(event["audio"]), "<i2")
                except (ValueError, KeyError):
                    await self._error(ws, "Invalid audio data", "invalid_audio")
                    continue
                self.samples[index] += len(audio)
                self.appends.append(len(audio))
                if self.fail_with:
                    await self._error(ws, self.fail_with, "processing_error")
                owed += len(audio)
                while todo and owed >= PIECE_SAMPLES:
                    owed -= PIECE_SAMPLES
                    delta = {"type": "transcription.delta", "delta": todo.pop(0)}
                    if self.delay:
                        asyncio.get_running_loop().call_later(
                            self.delay, asyncio.ensure_future, ws.send(json.dumps(delta))
                        )
                    else:
                        await ws.send(json.dumps(delta))
            else:
                await self._error(ws, f"Unknown event type: {kind}", "unknown_event")

    async def _error(self, ws: ServerConnection, message: str, code: str) -> None:
        await ws.send(json.dumps({"type": "error", "error": message, "code": code}))


@contextmanager
def running(server: FakeVLLMRealtimeServer) -> Iterator[FakeVLLMRealtimeServer]:
    """Serve ``server`` on a free port in a thread of its own until the block ends."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] = loop.create_future()

    async def main() -> None:
        async with serve(server._handle, "127.0.0.1", server.port) as ws_server:
            server.port = next(iter(ws_server.sockets)).getsockname()[1]
            started.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(5)
        loop.close()
