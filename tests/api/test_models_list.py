"""``GET /v1/models`` through both official SDKs: every installed engine, with capabilities, in a
list both ``models.list()`` parse."""

from __future__ import annotations

import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.client.models import AudioTranscriptionCapabilities, BaseModelCard

from tests.support.live_server import LiveServer, run_server
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings


@pytest.fixture
def fake_engines() -> list[object]:
    return [FakeTTSEngine(), FakeSTTEngine(), FakeChatEngine(context_length=2048)]


def test_openai_models_list(live_server: LiveServer) -> None:
    oai = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="any")
    models = list(oai.models.list())
    assert [m.id for m in models] == ["fake-tts", "fake-stt", "fake-chat"]
    assert all(m.object == "model" and m.owned_by == "voxserve" for m in models)
    assert all(isinstance(m.created, int) for m in models)
    assert oai.models.retrieve("gpt-4o-audio-preview").id == "fake-chat"


def test_mistral_models_list(live_server: LiveServer) -> None:
    mistral = Mistral(server_url=live_server.url)
    listing = mistral.models.list()
    cards = {card.id: card for card in listing.data or [] if isinstance(card, BaseModelCard)}
    assert len(cards) == len(listing.data or []) == 3

    tts, stt, chat = cards["fake-tts"], cards["fake-stt"], cards["fake-chat"]
    assert tts.capabilities.audio_speech and not tts.capabilities.completion_chat
    assert "voxtral-mini-tts-latest" in (tts.aliases or [])
    assert stt.capabilities.audio_transcription
    stt_caps = stt.audio_transcription_capabilities
    assert isinstance(stt_caps, AudioTranscriptionCapabilities)
    assert stt_caps.timestamp_granularities == ["segment", "word"]
    assert stt_caps.context_bias
    assert "whisper-1" in (stt.aliases or [])
    assert chat.capabilities.completion_chat and chat.capabilities.audio
    assert chat.max_context_length == 2048
    assert "voxtral-small-latest" in (chat.aliases or [])

    retrieved = mistral.models.retrieve(model_id="fake-stt")
    assert isinstance(retrieved, BaseModelCard) and retrieved.id == "fake-stt"
    with pytest.raises(SDKError) as info:
        mistral.models.retrieve(model_id="no-such-model")
    assert info.value.status_code == 404


def test_voxserve_extension_counts_voices(live_server: LiveServer) -> None:
    with live_server.client() as client:
        data = {m["id"]: m["voxserve"] for m in client.get("/v1/models").json()["data"]}
    assert data["fake-tts"] == {
        "kind": "speech",
        "default": True,
        "voices": 2,
        "cloning": True,
        "languages": ["en", "fr"],
    }
    assert data["fake-stt"] == {
        "kind": "transcription",
        "default": True,
        "language_detection": True,
        "languages": [],
    }
    assert data["fake-chat"] == {"kind": "chat", "default": True, "audio_native": False}


def test_only_the_default_engine_carries_hosted_aliases(settings: Settings) -> None:
    other = FakeChatEngine()
    other.name = "other-chat"
    configured = settings.model_copy(
        update={"engines": settings.engines.model_copy(update={"default_chat": "other-chat"})}
    )
    with run_server(configured, [FakeChatEngine(), other]) as server, server.client() as client:
        data = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert data["fake-chat"]["aliases"] == []
    assert not data["fake-chat"]["voxserve"]["default"]
    assert "gpt-4o-audio-preview" in data["other-chat"]["aliases"]
