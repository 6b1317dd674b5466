"""Chat with audio end to end with real engines: the Mistral SDK sends the JFK clip, the server
transcribes it with faster-whisper-base and asks SmolLM2-135M (llama.cpp) about it.

The tiny model's answer is not judged (135M parameters answer poorly); what is proven is that a
real model answered and that the prompt it got held the recognised speech. The prompt is read
from the chat service's DEBUG log line, captured with caplog (the server runs in this process).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mistralai.client import Mistral

from tests.support import speech_data
from tests.support.live_server import LiveServer, run_server
from tests.support.models import models_dir
from voxserve.settings import Settings

pytestmark = pytest.mark.model

CHAT_MODEL = "smollm2-135m-instruct"
SPOKEN = "ask not what your country can do"


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    models = models_dir()
    if not (models / CHAT_MODEL).is_dir():
        pytest.skip(f"{models} has no {CHAT_MODEL} (run ../shared/test-models/fetch)")
    pytest.importorskip("llama_cpp", reason="needs pip install 'voxserve[llama]'")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        models_dir=models,
        host="127.0.0.1",
        port=0,
        engines={"default_stt": "faster-whisper-base", "default_chat": CHAT_MODEL},
    )
    with run_server(settings) as server:
        yield server


@pytest.fixture
def mistral(real_server: LiveServer) -> Mistral:
    return Mistral(server_url=real_server.url, timeout_ms=600_000)


@pytest.fixture
def prompts(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """Reads the prompts that reached chat engines during the test, as the service logs them."""
    caplog.set_level(logging.DEBUG, logger="voxserve.core.chat")

    def logged() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "voxserve.core.chat" and r.getMessage().startswith("chat prompt for")
        ]

    return logged


def jfk_messages() -> Any:
    audio = speech_data.clip("faster_whisper_tests/jfk.flac").path.read_bytes()
    content = [
        {"type": "text", "text": "What does the speaker ask of his audience?"},
        {"type": "input_audio", "input_audio": base64.b64encode(audio).decode()},
    ]
    return [{"role": "user", "content": content}]


def test_complete_answers_about_the_recording(
    mistral: Mistral, prompts: Callable[[], list[str]]
) -> None:
    result = mistral.chat.complete(
        model="voxtral-mini-latest",
        messages=jfk_messages(),
        max_tokens=48,
        temperature=0.0,
    )
    message = result.choices[0].message
    assert message is not None and isinstance(message.content, str) and message.content.strip()
    assert result.usage.prompt_audio_seconds == 11
    assert result.usage.completion_tokens and 0 < result.usage.completion_tokens <= 48
    logged = prompts()
    assert len(logged) == 1 and f"chat prompt for {CHAT_MODEL}" in logged[0]
    assert SPOKEN in logged[0].lower()
    assert '<audio_transcript index=1 language="en"' in logged[0].replace('\\"', '"')


def test_stream_answers_about_the_recording(
    mistral: Mistral, prompts: Callable[[], list[str]]
) -> None:
    events = list(
        mistral.chat.stream(model="voxtral-small-latest", messages=jfk_messages(), max_tokens=48)
    )
    text = "".join(str(e.data.choices[0].delta.content) for e in events if e.data.choices)
    assert text.strip()
    last = events[-1].data
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.prompt_audio_seconds == 11
    assert any(SPOKEN in p.lower() for p in prompts())
