"""Browser rules (#11 security, #14 item 4): what a page on another site would send is refused;
JSON bodies need the JSON content type; the page is served with a strict CSP."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live_server import LiveServer, run_server
from tests.support.web_keys import make_keys
from voxserve.engines.fake import FakeTTSEngine
from voxserve.settings import Settings

SPEECH = {"input": "hello", "voice_id": "fake-tts:alice"}
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}


def test_keyless_speech_refuses_a_text_plain_json_body_with_415(live_server: LiveServer) -> None:
    with live_server.client() as client:
        answer = client.post(
            "/v1/audio/speech",
            content=httpx.Request("POST", "/", json=SPEECH).content,
            headers={"Content-Type": "text/plain"},
        )
        assert answer.status_code == 415
        assert "application/json" in answer.text


def test_a_json_body_without_content_type_is_refused(live_server: LiveServer) -> None:
    with live_server.client() as client:
        answer = client.post("/api/tts/generate", content=b'{"input": "hi"}')
        assert answer.status_code == 415
        assert answer.json()["code"] == 41500


def test_keyless_mode_refuses_a_cross_site_voice_upload(live_server: LiveServer) -> None:
    files = {"file": ("a.wav", b"RIFF....", "audio/wav")}
    with live_server.client() as client:
        answer = client.post("/v1/audio/voices", files=files, data={"name": "x"}, headers=EVIL)
        assert answer.status_code == 403
        assert client.get("/v1/audio/voices?type=custom").json()["total"] == 0


def test_keyless_mode_refuses_a_cross_site_read(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/v1/usage", headers=EVIL).status_code == 403
        navigate = {**EVIL, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
        assert client.get("/", headers=navigate).status_code == 200  # a link still opens the app


def test_keyless_mode_answers_only_loopback_host_names(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/v1/usage", headers={"Host": "rebind.evil.example"}).status_code == 403
        assert client.get("/v1/usage", headers={"Host": "localhost:1"}).status_code == 200


async def test_a_cross_site_post_with_the_session_cookie_is_refused(settings: Settings) -> None:
    (key,) = await make_keys(settings, "alice")
    with run_server(settings, [FakeTTSEngine()]) as live, live.client() as client:
        assert client.post("/web/session", json={"api_key": key}).status_code == 200
        foreign = client.post("/v1/audio/speech", json=SPEECH, headers=EVIL)
        assert foreign.status_code == 403
        same = {"Origin": live.url, "Sec-Fetch-Site": "same-origin"}
        assert client.post("/v1/audio/speech", json=SPEECH, headers=same).status_code == 200
        # an API key is not a browser's ambient credential: it passes from anywhere
        with live.client(key) as keyed:
            assert keyed.post("/v1/audio/speech", json=SPEECH, headers=EVIL).status_code == 200


async def test_signing_in_from_another_site_is_refused(settings: Settings) -> None:
    (key,) = await make_keys(settings, "alice")
    with run_server(settings, [FakeTTSEngine()]) as live, live.client() as client:
        answer = client.post("/web/session", json={"api_key": key}, headers=EVIL)
        assert answer.status_code == 403
        assert "set-cookie" not in answer.headers


@pytest.mark.parametrize("origins", [[], ["https://app.example"]])
def test_cors_is_off_unless_allow_listed(settings: Settings, origins: list[str]) -> None:
    web = settings.web.model_copy(update={"cors_origins": origins})
    with run_server(settings.model_copy(update={"web": web}), [FakeTTSEngine()]) as live:
        preflight = httpx.options(
            f"{live.url}/v1/audio/speech",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        allowed = preflight.headers.get("access-control-allow-origin")
        assert allowed == ("https://app.example" if origins else None)


def test_the_page_has_a_csp_without_inline_script(live_server: LiveServer) -> None:
    with live_server.client() as client:
        page = client.get("/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "<script>" not in page.text and "cdn" not in page.text.lower()
        assert client.get("/web/static/js/app.js").status_code == 200
