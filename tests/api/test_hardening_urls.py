"""URLs and bounds (#14 item 10): audio URLs come from ``VOXSERVE_PUBLIC_URL`` and are never
guessed from a non-loopback ``Host``; the fetch allow-list is CIDR ranges that never open
link-local or metadata addresses; chat ``max_tokens`` is bounded by a setting and the context."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from pydantic import ValidationError

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

SPEAK = {"input": "Hello there.", "voice_id": "fake-tts:alice", "response_format": "wav"}


def make_settings(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(data_dir=tmp_path / "d", models_dir=tmp_path / "m", port=0, **fields)


async def make_key(settings: Settings) -> str:
    """A key, so requests are not keyless (keyless mode answers only loopback hosts anyway)."""
    async with open_services(settings, engines=[FakeTTSEngine()]) as services:
        return (await services.auth.create_key("urls")).secret


@pytest.fixture
def wav_server(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server holding ``a.wav``; yields its URL."""
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "a.wav").write_bytes(tone_wav(2.0))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(folder))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/a.wav"
    httpd.shutdown()


async def test_audio_urls_use_the_public_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://speech.example.com")
    key = await make_key(settings)
    with run_server(settings, [FakeTTSEngine()]) as server, server.client(key) as client:
        generated = client.post("/api/tts/generate", json=SPEAK).json()["data"]
        assert generated["audio_url"].startswith("https://speech.example.com/v1/files/")
        file_id = client.post("/v1/files", files={"file": ("a.wav", b"abc")}).json()["id"]
        signed = client.get(f"/v1/files/{file_id}/url", headers={"host": "evil.example"})
        assert signed.json()["url"].startswith("https://speech.example.com/")


async def test_audio_urls_are_not_guessed_from_a_non_loopback_host(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    key = await make_key(settings)
    with run_server(settings, [FakeTTSEngine()]) as live_server, live_server.client(key) as client:
        before = client.get("/v1/usage").json()
        refused = client.post("/api/tts/generate", json=SPEAK, headers={"host": "evil.example"})
        assert refused.status_code == 503, refused.text
        assert "VOXSERVE_PUBLIC_URL" in refused.json()["message"]
        after = client.get("/v1/usage").json()["totals"]
        assert (
            (after["characters"], after["credits"])
            == (0, 0)
            == (  # nothing spoken
                before["totals"]["characters"],
                before["totals"]["credits"],
            )
        )
        file_id = client.post("/v1/files", files={"file": ("a.wav", b"abc")}).json()["id"]
        signed = client.get(f"/v1/files/{file_id}/url", headers={"host": "evil.example:80"})
        assert signed.status_code == 503 and "VOXSERVE_PUBLIC_URL" in signed.json()["message"]
        local = client.post("/api/tts/generate", json=SPEAK)  # Host: 127.0.0.1:port
        assert local.json()["data"]["audio_url"].startswith(live_server.url)


def transcribe(server: LiveServer, url: str) -> str:
    mistral = Mistral(server_url=server.url)
    return mistral.audio.transcriptions.complete(model="voxtral-mini-latest", file_url=url).text


def test_allow_list_opens_only_the_listed_cidr_ranges(tmp_path: Path, wav_server: str) -> None:
    listed = make_settings(tmp_path, fetch={"private_networks": ["127.0.0.0/30"]})
    with run_server(listed, [FakeSTTEngine("Opened.")]) as server:
        assert transcribe(server, wav_server) == "Opened."
    other = make_settings(tmp_path, fetch={"private_networks": ["10.0.0.0/8"]})
    with run_server(other, [FakeSTTEngine()]) as server, pytest.raises(SDKError) as refused:
        transcribe(server, wav_server)
    assert refused.value.status_code == 400 and "loopback" in refused.value.body


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/a.wav",
        "http://[::ffff:169.254.169.254]/a.wav",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
    ],
)
def test_metadata_and_link_local_addresses_stay_refused_even_when_everything_is_listed(
    tmp_path: Path, url: str
) -> None:
    everything = {"private_networks": ["0.0.0.0/0", "::/0"], "allow_private_addresses": True}
    settings = make_settings(tmp_path, fetch=everything)
    with run_server(settings, [FakeSTTEngine()]) as server, pytest.raises(SDKError) as refused:
        transcribe(server, url)
    assert refused.value.status_code == 400 and "file_url" in refused.value.body


def test_an_allow_list_entry_that_is_not_a_cidr_range_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="not a CIDR range"):
        Settings(fetch={"private_networks": ["10.0.0.0/33"]})


def chat(server: LiveServer, **options: Any) -> Any:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    messages = [{"role": "user", "content": "Hello"}]
    return client.chat.completions.create(model="fake-chat", messages=messages, **options)


def test_chat_max_tokens_is_bounded_by_the_setting_and_the_context(tmp_path: Path) -> None:
    engine = FakeChatEngine(context_length=4096)
    settings = make_settings(tmp_path, limits={"chat_max_tokens": 512})
    with run_server(settings, [engine]) as server:
        with pytest.raises(openai.UnprocessableEntityError, match="max_tokens: at most 512"):
            chat(server, max_tokens=100_000)
        with pytest.raises(openai.UnprocessableEntityError):
            chat(server, max_completion_tokens=513)
        assert not engine.requests  # refused before the engine
        chat(server)
        chat(server, max_tokens=20)
    assert [r.max_tokens for r in engine.requests] == [512, 20]
    small = FakeChatEngine(context_length=300)
    with run_server(make_settings(tmp_path / "2"), [small]) as server:
        chat(server)
    budget = small.requests[0].max_tokens
    assert budget is not None and 0 < budget < 300  # what the context leaves
