"""One flow with real models (#11): a keyless loopback server with the test models opens signed
in; the playground speaks with the default engine and the transcription studio gives back the
clip's words (WER with Whisper's normaliser)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.support.live_server import run_server
from tests.support.models import models_dir
from tests.support.speech_data import SpeechClip
from tests.support.wer import wer
from tests.web.conftest import screenshot
from voxserve.settings import EngineSettings, Settings

pytestmark = pytest.mark.model


def test_speak_and_transcribe_with_real_models(
    browser: Browser, settings: Settings, speech_clip: SpeechClip
) -> None:
    real = settings.model_copy(
        update={
            "models_dir": models_dir(),
            "engines": EngineSettings(default_stt="faster-whisper-tiny.en"),
        }
    )
    with run_server(real) as live:
        context = browser.new_context(base_url=live.url)
        try:
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto("/#/playground")
            page.get_by_label("Text").fill("The birch canoe slid on the smooth planks.")
            page.get_by_role("button", name="Generate").click()
            expect(page.get_by_role("button", name="Download")).to_be_enabled()
            duration = page.locator("audio").evaluate(
                "a => new Promise(r => a.readyState >= 1 ? r(a.duration)"
                " : a.addEventListener('loadedmetadata', () => r(a.duration)))"
            )
            assert duration > 1.0
            page.get_by_role("link", name="Transcription").click()
            page.get_by_label("Upload").set_input_files(str(speech_clip.path))
            page.get_by_role("button", name="Transcribe").click()
            expect(page.get_by_role("button", name="Download txt")).to_be_visible()
            heard = " ".join(page.locator(".transcript .word").all_inner_texts())
            assert wer([speech_clip.transcript], [heard]) < 0.3, heard
            screenshot(page, "real-transcription")
        finally:
            context.close()
