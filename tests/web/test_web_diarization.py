"""The transcription studio with speakers: each diarized speaker's segments get their own
colour lane and name tag (fake STT engine, fake diarizer that hears pitches)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.api.test_diarization_sdk import TRANSCRIPT, two_voices
from tests.support.fake_diarizer import FakeDiarizer
from tests.support.live_server import LiveServer, run_server
from tests.support.web_keys import make_keys
from tests.web.conftest import screenshot
from tests.web.test_web_app import sign_in
from voxserve.engines.fake import FakeSTTEngine
from voxserve.settings import Settings


@pytest.fixture
def web_server(settings: Settings) -> Iterator[tuple[LiveServer, str]]:
    with ThreadPoolExecutor(1) as pool:
        (key,) = pool.submit(asyncio.run, make_keys(settings, "alice")).result()
    engines = [FakeSTTEngine(TRANSCRIPT), FakeDiarizer()]
    with run_server(settings, engines) as live:  # type: ignore[arg-type]
        yield live, key


def test_speakers_get_colour_lanes(
    page: Page, web_server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    talk = tmp_path / "talk.wav"
    talk.write_bytes(two_voices())
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Transcription").click()
    page.get_by_label("Upload").set_input_files(str(talk))
    page.get_by_label("Speakers").check()
    page.get_by_role("button", name="Transcribe").click()
    expect(page.get_by_role("button", name="Download srt")).to_be_visible()
    segments = page.locator(".transcript .segment")
    expect(segments).to_have_count(3)
    expect(segments.nth(0)).to_have_class("segment speaker speaker-0")
    expect(segments.nth(1)).to_have_class("segment speaker speaker-1")
    expect(segments.nth(1).locator(".speaker-name")).to_have_text("speaker_2")
    lane = segments.nth(1).evaluate("s => getComputedStyle(s).borderLeftColor")
    assert lane != segments.nth(0).evaluate("s => getComputedStyle(s).borderLeftColor")
    screenshot(page, "transcription-speakers")
