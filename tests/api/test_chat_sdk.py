"""Chat with audio through the official SDKs against a live server: fake engines for the wire
shapes and errors, and the remote chat engine against an OpenAI-compatible stub on loopback.
Real answers from a real model are in tests/e2e/test_chat_real.py (marker ``model``)."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.client.models import ChatCompletionResponse

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from tests.support.openai_stub_server import OpenAIStubServer
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine
from voxserve.engines.remote_chat import RemoteChatEngine
from voxserve.settings import Settings

TRANSCRIPT = "Ask not what your country can do for you."
AUDIO = tone_wav(3.2)
AUDIO_B64 = base64.b64encode(AUDIO).decode()


@pytest.fixture
def chat_engine() -> FakeChatEngine:
    return FakeChatEngine()


@pytest.fixture
def fake_engines(chat_engine: FakeChatEngine) -> list[object]:
    return [FakeSTTEngine(TRANSCRIPT), chat_engine]


@pytest.fixture
def mistral(live_server: LiveServer) -> Mistral:
    return Mistral(server_url=live_server.url)


@pytest.fixture
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")


def answer_text(result: ChatCompletionResponse) -> str:
    message = result.choices[0].message
    assert message is not None and isinstance(message.content, str)
    return message.content


def mistral_messages(question: str = "What is said?") -> Any:
    content = [
        {"type": "text", "text": question},
        {"type": "input_audio", "input_audio": AUDIO_B64},
    ]
    return [{"role": "user", "content": content}]


def openai_messages(question: str = "What is said?") -> Any:
    audio = {"data": AUDIO_B64, "format": "wav"}
    content = [{"type": "text", "text": question}, {"type": "input_audio", "input_audio": audio}]
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]


# --------------------------------------------------------------------------- Mistral SDK


def test_mistral_complete_with_audio(mistral: Mistral, chat_engine: FakeChatEngine) -> None:
    result = mistral.chat.complete(
        model="voxtral-small-latest",
        messages=mistral_messages(),
        temperature=0.3,
        top_p=0.8,
        max_tokens=50,
        stop=["zzz"],
    )
    assert result.object == "chat.completion"
    assert result.model == "voxtral-small-latest"
    assert "you." in answer_text(result)
    assert result.choices[0].finish_reason == "stop"
    usage = result.usage
    assert usage.prompt_audio_seconds == 4
    assert usage.total_tokens == (usage.prompt_tokens or 0) + (usage.completion_tokens or 0) > 0
    sent = chat_engine.requests[-1]
    assert (sent.temperature, sent.top_p, sent.max_tokens, sent.stop) == (0.3, 0.8, 50, ("zzz",))
    assert '<audio_transcript index=1 language="en" duration="3.2s">' in sent.messages[0].content
    assert TRANSCRIPT in sent.messages[0].content


def test_mistral_stream_with_audio(mistral: Mistral) -> None:
    events = list(mistral.chat.stream(model="voxtral-mini-latest", messages=mistral_messages()))
    chunks = [e.data for e in events]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(str(c.choices[0].delta.content) for c in chunks if c.choices)
    whole = mistral.chat.complete(model="voxtral-mini-latest", messages=mistral_messages())
    assert text == answer_text(whole)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.prompt_audio_seconds == 4
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_mistral_audio_by_signed_url(mistral: Mistral, chat_engine: FakeChatEngine) -> None:
    audio_file: Any = {"file_name": "a.wav", "content": AUDIO}
    uploaded = mistral.files.upload(file=audio_file, purpose="audio")  # type: ignore[arg-type]
    url = mistral.files.get_signed_url(file_id=uploaded.id).url
    content = [{"type": "input_audio", "input_audio": url}, {"type": "text", "text": "Summarise."}]
    messages: Any = [{"role": "user", "content": content}]
    result = mistral.chat.complete(model="voxtral-small-latest", messages=messages)
    assert result.usage.prompt_audio_seconds == 4
    assert TRANSCRIPT in chat_engine.requests[-1].messages[0].content


# --------------------------------------------------------------------------- OpenAI SDK


def test_openai_create_with_input_audio(oai: openai.OpenAI, chat_engine: FakeChatEngine) -> None:
    result = oai.chat.completions.create(
        model="gpt-4o-audio-preview",
        messages=openai_messages(),
        max_completion_tokens=3,
    )
    assert result.object == "chat.completion"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content
    assert result.usage is not None and result.usage.completion_tokens == 3
    assert result.usage.model_extra == {"prompt_audio_seconds": 4}
    sent = chat_engine.requests[-1]
    assert [m.role for m in sent.messages] == ["system", "user"]
    assert sent.max_tokens == 3
    assert TRANSCRIPT in sent.messages[1].content


def test_openai_stream_with_input_audio(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-4o-audio-preview",
        messages=openai_messages(),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    whole = oai.chat.completions.create(model="gpt-4o-audio-preview", messages=openai_messages())
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0


def test_raw_sse_framing(live_server: LiveServer) -> None:
    body = {"model": "voxtral-mini-latest", "messages": mistral_messages(), "stream": True}
    with (
        live_server.client() as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)  # no event: lines
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["usage"]["prompt_audio_seconds"] == 4


# --------------------------------------------------------------------------- errors


def post(server: LiveServer, body: dict[str, Any]) -> httpx.Response:
    with server.client() as client:
        return client.post("/v1/chat/completions", json=body)


def test_errors(live_server: LiveServer) -> None:
    bad_audio = [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": "bm90IGF1ZGlv"}]}
    ]
    decoded = post(live_server, {"model": "voxtral-mini-latest", "messages": bad_audio})
    assert decoded.status_code == 400 and "decoded" in decoded.json()["message"]
    assert decoded.json()["object"] == "error"  # Mistral's envelope

    url_audio = {"data": "http://127.0.0.1:1/a.wav", "format": "wav"}
    refused = [{"role": "user", "content": [{"type": "input_audio", "input_audio": url_audio}]}]
    fetched = post(live_server, {"model": "gpt-4o-audio-preview", "messages": refused})
    assert fetched.status_code == 400
    assert "loopback" in fetched.json()["error"]["message"]  # OpenAI's envelope

    too_long = [{"role": "user", "content": "word " * 5000}]
    context = post(live_server, {"model": "voxtral-mini-latest", "messages": too_long})
    assert context.status_code == 400 and "context" in context.json()["message"]

    unknown = post(
        live_server, {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert unknown.status_code == 400 and "fake-chat" in unknown.json()["message"]

    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    assert post(live_server, {"messages": image}).status_code == 400
    assert post(live_server, {"messages": []}).status_code == 422


def test_audio_url_is_fetched_when_private_addresses_are_allowed(
    tmp_path: Path, settings: Settings
) -> None:
    (tmp_path / "a.wav").write_bytes(AUDIO)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    fetch = settings.fetch.model_copy(update={"allow_private_addresses": True})
    chat = FakeChatEngine()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/a.wav"
    content = [{"type": "text", "text": "What is it?"}, {"type": "input_audio", "input_audio": url}]
    messages: Any = [{"role": "user", "content": content}]
    try:
        with run_server(settings.model_copy(update={"fetch": fetch}), [FakeSTTEngine(), chat]) as s:
            result = Mistral(server_url=s.url).chat.complete(
                model="voxtral-mini-latest", messages=messages
            )
    finally:
        httpd.shutdown()
    assert result.usage.prompt_audio_seconds == 4
    assert "<audio_transcript index=1" in chat.requests[-1].messages[0].content


def test_openai_sdk_sees_a_400_for_bad_audio(oai: openai.OpenAI) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}],
        }
    ]
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="gpt-4o-audio-preview", messages=messages)
    assert "Audio part 1" in info.value.message


def test_no_chat_engine_is_a_503(settings: Settings) -> None:
    messages: Any = [{"role": "user", "content": "hi"}]
    with run_server(settings, [FakeSTTEngine()]) as server, pytest.raises(SDKError) as info:
        Mistral(server_url=server.url).chat.complete(
            model="voxtral-small-latest", messages=messages
        )
    assert info.value.status_code == 503
    assert "voxserve models pull qwen2.5-1.5b-instruct" in json.loads(info.value.body)["message"]


# --------------------------------------------------------------------------- remote engine


@pytest.fixture
def stub() -> Iterator[OpenAIStubServer]:
    with OpenAIStubServer() as server:
        yield server


def remote_server(settings: Settings, stub: OpenAIStubServer, *, native: bool) -> Any:
    engine = RemoteChatEngine(stub.base_url, "stub-model", audio_native=native)
    return run_server(settings, [FakeSTTEngine(TRANSCRIPT), engine])


def test_remote_audio_native_passes_the_audio_through(
    settings: Settings, stub: OpenAIStubServer
) -> None:
    with remote_server(settings, stub, native=True) as server:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="any")
        result = oai.chat.completions.create(
            model="gpt-4o-audio-preview",
            messages=openai_messages(),
            temperature=0.5,
            top_p=0.9,
            max_tokens=6,
            stop=["Parts:"],
        )
    # The stub cut at the stop string, then after max_tokens words (one token each).
    assert result.choices[0].message.content == "2 messages. Last said: What is"
    assert result.choices[0].finish_reason == "length"
    sent = stub.last("/v1/chat/completions").json
    assert sent["model"] == "stub-model"
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.5, 0.9, 6)
    assert sent["stop"] == ["Parts:"]
    parts = sent["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "What is said?"}
    assert parts[1]["input_audio"] == {"data": AUDIO_B64, "format": "wav"}  # the same bytes


def test_remote_cascade_sends_the_transcript(settings: Settings, stub: OpenAIStubServer) -> None:
    with remote_server(settings, stub, native=False) as server:
        mistral = Mistral(server_url=server.url)
        events = list(
            mistral.chat.stream(model="voxtral-small-latest", messages=mistral_messages())
        )
    text = "".join(str(e.data.choices[0].delta.content) for e in events if e.data.choices)
    assert "ask not what your country" in text.lower()
    assert "input_audio" not in text
    content = stub.last("/v1/chat/completions").json["messages"][0]["content"]
    assert isinstance(content, str)
    assert content.startswith("What is said?\n<audio_transcript index=1")
    assert f"] {TRANSCRIPT}" in content
    usage = events[-1].data.usage
    assert usage is not None and usage.prompt_audio_seconds == 4


def test_remote_failure_mid_stream_ends_with_an_error_event(
    settings: Settings, stub: OpenAIStubServer
) -> None:
    stub.stream_error_after = 2
    with remote_server(settings, stub, native=False) as server:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="any")
        stream = oai.chat.completions.create(
            model="gpt-4o", messages=openai_messages(), stream=True
        )
        with pytest.raises(openai.APIError, match="remote chat server failed"):
            list(stream)
