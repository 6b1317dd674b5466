"""A fake OpenAI-compatible server (vLLM / vLLM-Omni shape), a test double for the remote engines.

It is a real HTTP server on 127.0.0.1 (a free port) in a background thread, so the engines are
exercised through their actual ``httpx`` code path: streaming bodies, chunked transfer,
multipart uploads and server-sent events. It models nothing: speech is a sine, transcripts and
chat answers describe what the request contained. Every request is recorded for assertions.

    with OpenAIStubServer() as stub:
        engine = RemoteChatEngine(stub.base_url, "m")
        ...
        assert stub.requests[-1].json["model"] == "m"

For pools, several run at once; ``kill`` makes one die as a crashed server would (refused
connections, kept-alive ones dropped) and ``revive`` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import socket
import struct
import threading
import time
import wave
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SPEECH_SAMPLE_RATE = 24000
SPEECH_SECONDS_PER_CHARACTER = 0.02
"""Length of the stub's speech: this many seconds per input character at speed 1."""
SPEECH_CHUNK_BYTES = 999
"""Odd on purpose: every other chunk boundary splits a 16-bit sample in two."""


@dataclass(frozen=True)
class UploadedFile:
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    status: int
    message: str


class OpenAIStubServer:
    """The test double. Use as a context manager (or ``start``/``stop``).

    Args:
        voices: what ``GET /v1/audio/voices`` lists; None answers 404 (a server without it).
        language: the language the transcription endpoint reports (Whisper style: ``english``).
        words_in_segments: put words inside segments (speaches style) instead of beside them
            (OpenAI style).
        verbose: answer ``verbose_json`` when asked; False answers only ``{"text"}`` (a server
            that ignores the format).
    """

    def __init__(
        self,
        *,
        voices: list[str] | None = None,
        language: str = "english",
        words_in_segments: bool = False,
        verbose: bool = True,
    ) -> None:
        self.voices = voices
        self.language = language
        self.words_in_segments = words_in_segments
        self.verbose = verbose
        self.requests: list[RecordedRequest] = []
        self.stream_error_after: int | None = None
        """Chat: after this many deltas, send an ``error`` event instead of the rest."""
        self.delay_seconds = 0.0
        """Wait this long before answering each POST (to keep requests in flight)."""
        self._failures: dict[str, _Failure] = {}
        self._lock = threading.Lock()
        self._httpd = _StubHTTPServer(("127.0.0.1", 0), _Handler, self)
        self._port = int(self._httpd.server_address[1])
        self._thread = self._serving_thread()
        self._running = False

    def _serving_thread(self) -> threading.Thread:
        # A short poll interval keeps ``stop`` (and so each test's teardown) quick.
        return threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def posts(self, path: str) -> int:
        """How many POSTs to ``path`` this server received."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == "POST" and r.path == path)

    def kill(self) -> None:
        """Die like a crashed server: stop listening and drop every open connection."""
        self.stop()
        self._httpd.drop_connections()

    def revive(self) -> None:
        """Listen again on the same port (after ``kill``)."""
        self._httpd = _StubHTTPServer(("127.0.0.1", self._port), _Handler, self)
        self._thread = self._serving_thread()
        self.start()

    def fail(self, path: str, status: int, message: str = "stub failure") -> None:
        """Answer the next request to ``path`` (``/v1/chat/completions``) with an error."""
        with self._lock:
            self._failures[path] = _Failure(status, message)

    def take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            return self._failures.pop(path, None)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def last(self, path: str) -> RecordedRequest:
        """The latest recorded request to ``path``."""
        with self._lock:
            return next(r for r in reversed(self.requests) if r.path == path)

    def start(self) -> OpenAIStubServer:
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _StubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, stub: OpenAIStubServer) -> None:
        super().__init__(address, handler)
        self.stub = stub
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        with self._connections_lock:
            self._connections.add(conn)
        return conn, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up early (a cancelled stream) are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """Headers and body go out in separate writes: with Nagle's algorithm and the client's
    delayed ACK, every answer would wait ~40 ms."""
    server: _StubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        recorded = self._record(b"")
        if self._answer_failure(recorded.path):
            return
        if recorded.path == "/v1/audio/voices" and self.server.stub.voices is not None:
            self._send_json(200, {"voices": self.server.stub.voices, "uploaded_voices": []})
        elif recorded.path == "/v1/models":
            model = {"id": "fake-model", "object": "model", "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        recorded = self._record(self.rfile.read(length))
        if self.server.stub.delay_seconds:
            time.sleep(self.server.stub.delay_seconds)
        if self._answer_failure(recorded.path):
            return
        routes = {
            "/v1/audio/speech": self._speech,
            "/v1/audio/transcriptions": self._transcription,
            "/v1/chat/completions": self._chat,
        }
        route = routes.get(recorded.path)
        if route is None:
            self._send_json(404, {"detail": "Not Found"})
        else:
            route(recorded)

    # ------------------------------------------------------------------ recording and replies

    def _record(self, body: bytes) -> RecordedRequest:
        content_type = self.headers.get("Content-Type", "")
        recorded = RecordedRequest(
            method=self.command,
            path=self.path.split("?")[0],
            headers={key.lower(): value for key, value in self.headers.items()},
        )
        if content_type.startswith("application/json"):
            recorded.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            recorded.form, recorded.files = _parse_multipart(content_type, body)
        self.server.stub.record(recorded)
        return recorded

    def _answer_failure(self, path: str) -> bool:
        failure = self.server.stub.take_failure(path)
        if failure is not None:
            error = {"message": failure.message, "type": "StubError", "code": failure.status}
            self._send_json(failure.status, {"error": error})
        return failure is not None

    def _send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    # ------------------------------------------------------------------ endpoints

    def _speech(self, recorded: RecordedRequest) -> None:
        body = recorded.json
        seconds = len(body["input"]) * SPEECH_SECONDS_PER_CHARACTER / float(body.get("speed", 1))
        pcm = sine_pcm16(seconds, SPEECH_SAMPLE_RATE)
        self._start_chunked("audio/pcm")
        for start in range(0, len(pcm), SPEECH_CHUNK_BYTES):
            self._send_chunk(pcm[start : start + SPEECH_CHUNK_BYTES])
        self._send_chunk(b"")

    def _transcription(self, recorded: RecordedRequest) -> None:
        form = recorded.form
        with wave.open(io.BytesIO(recorded.files["file"].data)) as wav:
            duration = wav.getnframes() / wav.getframerate()
        model = form.get("model", ["?"])[0]
        text = f"Transcribed by {model}."
        if "prompt" in form:
            text += f" Prompt was {form['prompt'][0]}."
        verbose_asked = form.get("response_format", ["json"])[0] == "verbose_json"
        if not (verbose_asked and self.server.stub.verbose):
            self._send_json(200, {"text": text})
            return
        want_words = "word" in form.get("timestamp_granularities[]", [])
        self._send_json(200, self._verbose(text, duration, want_words))

    def _verbose(self, text: str, duration: float, want_words: bool) -> dict[str, Any]:
        """Two segments, halves of the words, with evenly spread word times."""
        tokens = text.split()
        step = duration / len(tokens)
        words = [
            {"word": token, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
            for i, token in enumerate(tokens)
        ]
        half = len(tokens) // 2
        segments: list[dict[str, Any]] = []
        for seg_id, part in enumerate((words[:half], words[half:])):
            segment: dict[str, Any] = {
                "id": seg_id,
                "start": part[0]["start"],
                "end": part[-1]["end"],
                "text": " " + " ".join(w["word"] for w in part),
            }
            if want_words and self.server.stub.words_in_segments:
                segment["words"] = part
            segments.append(segment)
        answer: dict[str, Any] = {
            "task": "transcribe",
            "language": self.server.stub.language,
            "duration": duration,
            "text": text,
            "segments": segments,
        }
        if want_words and not self.server.stub.words_in_segments:
            answer["words"] = words
        return answer

    def _chat(self, recorded: RecordedRequest) -> None:
        body = recorded.json
        words, finish = _limit(chat_summary(body["messages"]), body)
        self._start_chunked("text/event-stream")
        error_after = self.server.stub.stream_error_after
        for i, word in enumerate(words):
            if error_after is not None and i == error_after:
                self._send_event({"error": {"message": "stub broke mid-stream", "code": 500}})
                self._send_chunk(b"")
                return
            self._send_event(_chat_chunk({"content": word if i == 0 else " " + word}, None))
        self._send_event(_chat_chunk({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = sum(len(json.dumps(m["content"])) for m in body["messages"]) // 4
            usage = {"prompt_tokens": prompt, "completion_tokens": len(words)}
            self._send_event({"object": "chat.completion.chunk", "choices": [], "usage": usage})
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _send_event(self, data: object) -> None:
        self._send_chunk(f"data: {json.dumps(data)}\n\n".encode())


def chat_summary(messages: list[dict[str, Any]]) -> str:
    """What the stub's chat answers: how many messages came, the last one's text and, for each
    content part that is not text, its type (and the audio format)."""
    last = messages[-1]["content"]
    parts = last if isinstance(last, list) else [{"type": "text", "text": last}]
    said = " ".join(p["text"] for p in parts if p["type"] == "text")
    others = [
        f"{p['type']}:{p['input_audio']['format']}" if p["type"] == "input_audio" else p["type"]
        for p in parts
        if p["type"] != "text"
    ]
    summary = f"{len(messages)} messages. Last said: {said}"
    return summary + (f" Parts: {' '.join(others)}" if others else "")


def _limit(text: str, body: dict[str, Any]) -> tuple[list[str], str]:
    """Apply ``stop`` (cut before the first stop string) and ``max_tokens`` (one word each)."""
    finish = "stop"
    for stop in body.get("stop") or []:
        text = text.split(stop)[0]
    words = text.split()
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and len(words) > max_tokens:
        words, finish = words[:max_tokens], "length"
    return words, finish


def _chat_chunk(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {"object": "chat.completion.chunk", "model": "stub", "choices": [choice]}


def sine_pcm16(seconds: float, sample_rate: int, frequency: float = 440.0) -> bytes:
    """A half-scale sine as signed 16-bit little-endian bytes."""
    count = round(seconds * sample_rate)
    values = (
        round(16383 * math.sin(2 * math.pi * frequency * i / sample_rate)) for i in range(count)
    )
    return struct.pack(f"<{count}h", *values)


def _parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, list[str]], dict[str, UploadedFile]]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    form: dict[str, list[str]] = {}
    files: dict[str, UploadedFile] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if part.get_filename() is not None:
            files[name] = UploadedFile(part.get_filename(), part.get_content_type(), data)
        else:
            form.setdefault(name, []).append(data.decode())
    return form, files
