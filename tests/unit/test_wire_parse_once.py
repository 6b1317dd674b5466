"""A JSON body is parsed once (#14 item 5): the wire rules' parse hands its document to the
route (the shared routes and the Mistral voice create), and a big body is parsed and checked in a
worker thread, not on the event loop."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from starlette.types import Message, Receive, Scope, Send

from tests.support.audio_samples import tone_wav
from voxserve.api import middleware
from voxserve.api.adapters.mistral import router as mistral
from voxserve.api.adapters.openai import router as openai
from voxserve.api.app import create_app
from voxserve.api.bodies import PARSED_JSON, json_body
from voxserve.api.middleware import BIG_JSON_BYTES, WireRulesMiddleware
from voxserve.api.shapes import ShapeRegistry
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings
from voxserve.storage.memory import create_memory_storage


class Recorder:
    """An ASGI app that keeps the scope and the body it was given, and answers 204."""

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def post(app: Any, body: bytes, content_type: bytes = b"application/json") -> list[Message]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/audio/voices",
        "query_string": b"",
        "headers": [(b"content-type", content_type)],
    }
    sent: list[Message] = []
    chunks = [body[:1000], body[1000:]]

    async def receive() -> Message:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    wrapped = WireRulesMiddleware(app, shapes=ShapeRegistry(shared=SHARED, prefixed=[]))
    await wrapped(scope, receive, send)
    return sent


SHARED = {"mistral": mistral.SHAPE, "openai": openai.SHAPE}


async def test_the_parsed_object_reaches_the_route_with_the_body_unchanged() -> None:
    app = Recorder()
    body = json.dumps({"name": "n", "sample_audio": "QUFB" * 1000}).encode()

    sent = await post(app, body)

    assert sent[0]["status"] == 204
    assert app.scope is not None
    assert app.scope[PARSED_JSON] == json.loads(body)
    assert app.body == body


@pytest.mark.parametrize("body", [b"[1, 2]", b"not json", b'"text"'])
async def test_only_an_object_is_handed_on(body: bytes) -> None:
    app = Recorder()
    await post(app, body)
    assert app.scope is not None
    assert PARSED_JSON not in app.scope


async def test_json_body_uses_the_parsed_object_without_reading_the_body() -> None:
    async def no_body() -> Message:
        raise AssertionError("the body was read again")

    document = {"input": "hello"}
    scope = {"type": "http", "method": "POST", "headers": [], PARSED_JSON: document}
    assert await json_body(Request(scope, no_body)) is document


async def test_a_big_body_is_checked_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    check = middleware.check_json_body

    def watched(raw: bytes) -> Any:
        threads.append(threading.current_thread())
        return check(raw)

    monkeypatch.setattr(middleware, "check_json_body", watched)
    small, numbers = b'{"a": [1.5]}', [0.5] * (BIG_JSON_BYTES // 4)
    big = json.dumps({"a": numbers}).encode()

    await post(Recorder(), small)
    await post(Recorder(), big)
    refused = await post(Recorder(), big[:-2] + b", NaN]}")

    assert threads[0] is threading.main_thread()
    assert threads[1] is not threading.main_thread()
    assert refused[0]["status"] == 422
    assert b"NaN is not a JSON number" in refused[1]["body"]


async def test_a_voice_create_body_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``POST /v1/audio/voices`` (megabytes of base64) validates the wire rules' document, not a
    second parse of the body by FastAPI."""
    sample = base64.b64encode(tone_wav(3.0)).decode()
    parses: list[int] = []
    loads = json.loads

    def counted(raw: str | bytes, **kwargs: Any) -> Any:
        if len(raw) > len(sample):
            parses.append(len(raw))
        return loads(raw, **kwargs)

    monkeypatch.setattr(json, "loads", counted)
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)
    app = create_app(settings, engines=[FakeTTSEngine()], storage=create_memory_storage())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            created = await client.post(
                "/v1/audio/voices", json={"name": "v", "sample_audio": sample}
            )
    assert created.status_code == 200, created.text
    assert created.json()["name"] == "v"
    assert len(parses) == 1
