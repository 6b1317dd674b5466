"""The playground plays MP3 while it streams (#11), through Media Source Extensions: with an
engine that speaks one word every ``DELAY`` seconds, sound plays before the stream has ended
(Download, enabled at the end, is still disabled)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page, expect

from tests.support.live_server import LiveServer, run_server
from tests.support.web_keys import make_keys
from tests.web.conftest import screenshot
from tests.web.test_web_app import sign_in
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

DELAY = 0.25
TEXT = "One two three four five six seven eight nine ten eleven twelve."

PLAYING_BEFORE_THE_END = """() => new Promise((resolve) => {
  const audio = document.querySelector("audio");
  const download = [...document.querySelectorAll("button")]
    .find((b) => b.textContent === "Download");
  const started = Date.now();
  const check = setInterval(() => {
    if (audio.currentTime === 0 && Date.now() - started < 20000) return;
    clearInterval(check);
    resolve({ streaming: audio.currentTime > 0 && download.disabled, src: audio.src });
  }, 20);
})"""


@pytest.fixture
def web_server(settings: Settings) -> Iterator[tuple[LiveServer, str]]:
    with ThreadPoolExecutor(1) as pool:
        (key,) = pool.submit(asyncio.run, make_keys(settings, "alice")).result()
    engines = [FakeTTSEngine(delay=DELAY), FakeSTTEngine()]
    with run_server(settings, engines) as live:  # type: ignore[arg-type]
        yield live, key


def test_mp3_plays_while_it_streams(page: Page, web_server: tuple[LiveServer, str]) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Text").fill(TEXT)
    page.get_by_label("Voice").select_option("fake-tts:alice")
    page.get_by_label("Format").select_option("mp3")
    page.get_by_role("button", name="Generate").click()

    seen = page.evaluate(PLAYING_BEFORE_THE_END)

    assert seen["streaming"] is True, "sound began only after the whole file arrived"
    assert seen["src"].startswith("blob:")
    expect(page.get_by_role("button", name="Download")).to_be_enabled()
    # The fake engine makes 10 ms per character: about 0.7 s for TEXT, all of it appended.
    assert page.locator("audio").evaluate("a => a.duration") > 0.5
    screenshot(page, "playground-mp3-stream")
