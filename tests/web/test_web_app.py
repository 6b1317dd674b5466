"""The web app in a real browser (#11): each flow a person would go through."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.support.live_server import LiveServer
from tests.support.speech_data import SpeechClip
from tests.web.conftest import screenshot
from voxserve.core.gateway_presets import variant_id


def sign_in(page: Page, key: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_sign_in_see_the_dashboard_and_sign_out(
    page: Page, web_server: tuple[LiveServer, str]
) -> None:
    page.goto("/")
    page.get_by_label("API key").fill("vx-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid API key")
    sign_in(page, web_server[1])
    expect(page.get_by_text("Signed in as alice")).to_be_visible()
    screenshot(page, "dashboard")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_generate_speech_and_hear_it(page: Page, web_server: tuple[LiveServer, str]) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Playground").click()
    text = page.get_by_label("Text")
    text.fill("Hello from the browser.")
    expect(page.get_by_text("23 / 5000 characters")).to_be_visible()
    page.get_by_role("button", name="[emotion=happy]").click()
    page.get_by_label("Voice").select_option("fake-tts:alice")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("button", name="Download")).to_be_enabled()
    duration = page.locator("audio").evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r(a.duration)"
        " : a.addEventListener('loadedmetadata', () => r(a.duration)))"
    )
    assert duration > 0
    expect(page.get_by_label("Code for this request")).to_contain_text("curl -X POST")
    screenshot(page, "playground")


def test_create_a_voice_by_upload_and_by_recording(
    page: Page, web_server: tuple[LiveServer, str], speech_clip: SpeechClip
) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Voices").click()
    expect(page.get_by_role("heading", name="Alice")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("<script>alert(1)</script> Uploaded")
    page.get_by_label("Upload").set_input_files(str(speech_clip.path))
    page.get_by_role("button", name="Create voice").click()
    expect(page.get_by_role("heading", name="<script>alert(1)</script> Uploaded")).to_be_visible()

    page.get_by_label("Name", exact=True).fill("Recorded")
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_text(re.compile(r"[1-9]\.\d s of 30"))).to_be_visible(timeout=10000)
    page.wait_for_timeout(5500)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"Recorded \d+\.\d s"))).to_be_visible()
    page.get_by_role("button", name="Create voice").click()
    expect(page.get_by_role("heading", name="Recorded", exact=True)).to_be_visible()
    screenshot(page, "voices")


def test_filter_voices_and_copy_a_variant_id(
    page: Page, web_server: tuple[LiveServer, str]
) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Voices").click()
    page.get_by_label("Filter gender").select_option("male")
    expect(page.get_by_role("heading", name="Alice")).to_have_count(0)
    expect(page.get_by_role("heading", name="Bob")).to_be_visible()
    page.get_by_role("button", name="Copy the id of Paul happy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == variant_id("en_paul_happy")


def test_transcribe_a_clip_and_see_its_words(
    page: Page, web_server: tuple[LiveServer, str], speech_clip: SpeechClip
) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Transcription").click()
    page.get_by_label("Upload").set_input_files(str(speech_clip.path))
    page.get_by_role("button", name="Transcribe").click()
    expect(page.get_by_role("button", name="Download srt")).to_be_visible()
    words = page.locator(".transcript .word")
    expect(words.first).to_have_text("Some")
    words.nth(2).click()
    assert page.locator("audio").evaluate("a => a.currentTime") > 0
    screenshot(page, "transcription")


def test_create_and_revoke_a_key(page: Page, web_server: tuple[LiveServer, str]) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator(".secret")).to_have_text(re.compile(r"^vx-"))
    screenshot(page, "keys")
    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_role("row", name=re.compile("laptop.*revoked"))).to_be_visible()


def test_a_revoked_session_is_signed_out(page: Page, web_server: tuple[LiveServer, str]) -> None:
    sign_in(page, web_server[1])
    page.get_by_role("link", name="Keys").click()
    page.get_by_role("button", name="Revoke alice").click()  # the key this session signed in with
    # The list's refresh is refused (401): the page goes back to sign-in and hides the navigation.
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


def test_a_cross_site_post_with_the_cookie_is_refused(
    page: Page, web_server: tuple[LiveServer, str]
) -> None:
    server, key = web_server
    sign_in(page, key)
    # localhost is another site than 127.0.0.1: a page there posts to the signed-in server
    page.goto(server.url.replace("127.0.0.1", "localhost") + "/health")  # a page without our CSP
    page.evaluate(
        """url => fetch(url + '/v1/audio/speech', {method: 'POST', mode: 'no-cors',
             credentials: 'include', headers: {'Content-Type': 'text/plain'},
             body: JSON.stringify({input: 'hi', voice_id: 'fake-tts:alice'})})""",
        server.url,
    )
    with server.client(key) as client:
        speech = [r for r in client.get("/v1/usage").json()["records"] if r["endpoint"] == "speech"]
    assert speech == []


def test_every_page_fits_360_px(page: Page, web_server: tuple[LiveServer, str]) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, web_server[1])
    for name in ("Dashboard", "Playground", "Voices", "Transcription", "Keys"):
        page.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (name, width)
        screenshot(page, f"narrow-{name.lower()}")


def test_keyless_loopback_opens_signed_in(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        page.goto("/")
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.get_by_text("Signed in as local")).to_be_visible()
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    finally:
        context.close()
