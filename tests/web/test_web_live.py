"""The transcription studio's live-microphone mode (#11): Chromium's fake microphone plays a
speech clip into an AudioWorklet, its 16-bit PCM goes over Mistral's realtime socket, and the text
shows as it arrives. The socket is opened with a browser token minted through the public API
with the session cookie; the API key never reaches the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, WebSocket, expect
from whisper_normalizer.english import EnglishTextNormalizer

from tests.support.live_server import LiveServer, run_server
from tests.support.models import models_dir
from tests.support.speech_data import SpeechClip
from tests.web.conftest import screenshot
from tests.web.test_web_app import sign_in
from voxserve.settings import EngineSettings, Settings

normalise = EnglishTextNormalizer()
"""Whisper's English normaliser (as ``tests.support.wer`` uses)."""


def watch_live(page: Page) -> tuple[list[WebSocket], list[Request]]:
    sockets: list[WebSocket] = []
    tokens: list[Request] = []
    page.on("websocket", lambda socket: sockets.append(socket))
    minting = "/v1/client/sessions"
    page.on("request", lambda r: tokens.append(r) if r.url.endswith(minting) else None)
    return sockets, tokens


def go_live(page: Page, seconds: float) -> str:
    """Start live mode, let the microphone speak for ``seconds``, stop; the final text."""
    page.get_by_role("link", name="Transcription").click()
    page.get_by_role("button", name="Live", exact=True).click()
    stop = page.get_by_role("button", name="Stop live")
    expect(stop).to_be_visible()
    live_text = page.get_by_test_id("live-text")
    expect(live_text).not_to_be_empty(timeout=60_000)  # text while the microphone still speaks
    page.wait_for_timeout(seconds * 1000)
    screenshot(page, "transcription-live")
    stop.click()
    expect(page.get_by_text("Done.")).to_be_visible(timeout=60_000)
    return live_text.inner_text()


def test_live_mode_shows_the_text_as_it_arrives_over_a_browser_token(
    page: Page, web_server: tuple[LiveServer, str], speech_clip: SpeechClip
) -> None:
    live, key = web_server
    sign_in(page, key)
    sockets, tokens = watch_live(page)

    text = go_live(page, 1.0)

    assert normalise(speech_clip.transcript) in normalise(text)  # the fake engine's transcript
    (socket,) = sockets
    assert socket.url.startswith(live.url.replace("http", "ws"))
    assert "/v1/audio/transcriptions/realtime?model=" in socket.url
    assert key not in socket.url
    (minted,) = tokens
    assert minted.method == "POST"
    assert "authorization" not in minted.all_headers()  # the session cookie, not the key
    assert key not in page.content()
    assert page.evaluate(f"() => JSON.stringify(localStorage).includes({key!r})") is False


@pytest.fixture
def real_server(settings: Settings) -> Iterator[LiveServer]:
    """A keyless loopback server with faster-whisper tiny.en as the default recogniser."""
    real = settings.model_copy(
        update={
            "models_dir": models_dir(),
            "engines": EngineSettings(default_stt="faster-whisper-tiny.en"),
        }
    )
    with run_server(real) as server:
        yield server


@pytest.mark.model
def test_live_mode_hears_the_words_of_the_clip(
    browser: Browser, real_server: LiveServer, speech_clip: SpeechClip
) -> None:
    context = browser.new_context(base_url=real_server.url, permissions=["microphone"])
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto("/")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        heard = set(normalise(go_live(page, speech_clip.duration + 1)).split())
    finally:
        context.close()
    words = set(normalise(speech_clip.transcript).split())
    # The fake microphone loops the clip and the live text is cut into turns: check meaning
    # loosely, as most of the clip's words heard.
    assert len(words & heard) >= 0.6 * len(words), (sorted(heard), sorted(words))
    assert re.search(r"\bnature\b", " ".join(heard))
