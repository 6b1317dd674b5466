"""Browser tests: Playwright drives Debian's chromium (never a downloaded browser) against a live
server with fake engines. Chromium's fake microphone plays a speech clip from the shared data.
Screenshots of each page go to ``test-output/screenshots/``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer, run_server
from tests.support.speech_data import SpeechClip, clip
from tests.support.web_keys import make_keys
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CLIP = "f5tts_examples/basic_ref_en.wav"


@pytest.fixture(scope="session")
def speech_clip() -> SpeechClip:
    return clip(CLIP)


@pytest.fixture(scope="session")
def browser(speech_clip: SpeechClip) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    args = [
        "--no-sandbox",
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_clip.path}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def web_server(settings: Settings, speech_clip: SpeechClip) -> Iterator[tuple[LiveServer, str]]:
    """A server that needs keys, with one key (returned beside it)."""
    # Playwright's sync API keeps an event loop running in this thread: make the key in another.
    with ThreadPoolExecutor(1) as pool:
        (key,) = pool.submit(asyncio.run, make_keys(settings, "alice")).result()
    engines = [FakeTTSEngine(), FakeSTTEngine(transcript=speech_clip.transcript)]
    with run_server(settings, engines) as live:  # type: ignore[arg-type]
        yield live, key


@pytest.fixture
def page(browser: object, web_server: tuple[LiveServer, str]) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=web_server[0].url, permissions=["microphone", "clipboard-read", "clipboard-write"]
    )
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, errors


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
