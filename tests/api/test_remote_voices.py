"""A remote speech server's own voices: asked for as the server starts, listed and usable."""

from __future__ import annotations

import time

import httpx
from mistralai.client import Mistral

from tests.support.live_server import run_server
from tests.support.openai_stub_server import OpenAIStubServer
from voxserve.settings import Settings


def preset_ids(client: httpx.Client) -> set[str]:
    response = client.get("/v1/audio/voices", params={"type": "preset", "limit": 100})
    assert response.status_code == 200, response.text
    return {voice["id"] for voice in response.json()["items"]}


def test_remote_voices_are_listed_without_configuring_them(settings: Settings) -> None:
    with OpenAIStubServer(voices=["casual_male", "neutral_female"]) as stub:
        remote = settings.model_copy(
            update={"remote": settings.remote.model_copy(update={"tts_url": stub.base_url})}
        )
        with run_server(remote) as server, server.client() as client:
            deadline = time.monotonic() + 10
            while "remote-tts:neutral_female" not in preset_ids(client):
                assert time.monotonic() < deadline, "the remote's voices never showed"
                time.sleep(0.05)
            spoken = client.post(
                "/v1/audio/speech",
                json={"input": "Hello.", "voice_id": "remote-tts:neutral_female"},
            )
            assert spoken.status_code == 200, spoken.text
            listed = Mistral(server_url=server.url).audio.voices.list(type_="preset", limit=100)
            assert "remote-tts:casual_male" in {voice.id for voice in listed.items}
        assert stub.last("/v1/audio/speech").json["voice"] == "neutral_female"
