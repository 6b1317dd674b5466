"""The gateway document's examples run verbatim (#11): its example voice id is the default
English preset, and the named presets (Paul, Jane...) have stable ids per emotional variant.

The curl commands below are copied from the document (file 002 of the seeds); only the base URL
and ``YOUR_API_KEY`` are replaced, as a reader would."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer
from voxserve.core.gateway_presets import EXAMPLE_VOICE_ID, FAMILIES, variant_id

BASE = "https://voxtral.com/api/tts"

GENERATE = """curl -X POST https://voxtral.com/api/tts/generate \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"input": "Hello world!", "voice_id": "82c99ee6-f932-423f-a4a3-d403c8914b8d"}'"""

GENERATE_SLOW = """curl -X POST https://voxtral.com/api/tts/generate \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "input": "I am so sorry for your loss. Words cannot express how deeply I feel for you.",
    "voice_id": "82c99ee6-f932-423f-a4a3-d403c8914b8d",
    "response_format": "mp3",
    "speed": 0.9
  }'"""

STREAM = """curl -N -X POST https://voxtral.com/api/tts/stream \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "input": "Hello! This audio streams in real time.",
    "voice_id": "82c99ee6-f932-423f-a4a3-d403c8914b8d"
  }'"""

CLONE = """curl -X POST https://voxtral.com/api/tts/voices/clone \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "name": "My Podcast Voice",
    "ref_audio": "'$(cat sample.b64)'",
    "language": "en",
    "gender": "male"
  }'"""

MINE = """curl https://voxtral.com/api/tts/voices/mine?page=1&limit=50 \\
  -H "Authorization: Bearer YOUR_API_KEY\""""

UPDATE = """curl -X PATCH https://voxtral.com/api/tts/voices/a1b2c3d4-... \\
  -H "Authorization: Bearer YOUR_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"name": "Updated Voice Name", "language": "fr"}'"""

DELETE = """curl -X DELETE https://voxtral.com/api/tts/voices/a1b2c3d4-... \\
  -H "Authorization: Bearer YOUR_API_KEY\""""


def run(example: str, server: LiveServer, cwd: Path, voice_id: str | None = None) -> str:
    command = example.replace(BASE, f"{server.url}/api/tts").replace("YOUR_API_KEY", "any")
    command = command.replace("voices/mine?page=1&limit=50", "'voices/mine?page=1&limit=50'")
    if voice_id:
        command = command.replace("a1b2c3d4-...", voice_id)
    done = subprocess.run(
        ["bash", "-c", command + " --fail-with-body -sS"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("example", [GENERATE, GENERATE_SLOW])
def test_the_generate_examples_speak(live_server: LiveServer, tmp_path: Path, example: str) -> None:
    answer = json.loads(run(example, live_server, tmp_path))
    assert answer["code"] == 0
    assert len(base64.b64decode(answer["data"]["audio_data"])) > 100


def test_the_stream_example_streams(live_server: LiveServer, tmp_path: Path) -> None:
    events = run(STREAM, live_server, tmp_path)
    assert "event: speech.audio.delta" in events
    assert "event: speech.audio.done" in events


def test_the_voice_examples_clone_list_update_and_delete(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # small enough for one shell argument (curl -d takes the whole body as one)
    (tmp_path / "sample.b64").write_text(base64.b64encode(tone_wav(5.5, rate=8000)).decode())
    created = json.loads(run(CLONE, live_server, tmp_path))["data"]
    assert created["name"] == "My Podcast Voice"
    assert json.loads(run(MINE, live_server, tmp_path))["data"]["total"] == 1
    updated = json.loads(run(UPDATE, live_server, tmp_path, created["id"]))["data"]
    assert (updated["name"], updated["language"]) == ("Updated Voice Name", "fr")
    assert json.loads(run(DELETE, live_server, tmp_path, created["id"]))["data"]["id"]


def test_the_example_voice_is_the_default_english_preset(live_server: LiveServer) -> None:
    with live_server.client() as client:
        voice = client.get(f"/v1/audio/voices/{EXAMPLE_VOICE_ID}").json()
        assert voice["maps_to"] == "fake-tts:alice"  # the first English preset


def test_the_named_presets_list_paul_and_jane_with_stable_variant_ids(
    live_server: LiveServer,
) -> None:
    with live_server.client() as client:
        voices = client.get("/api/tts/voices/presets").json()["data"]["voices"]
    named = {v["name"]: v for v in voices if v.get("variant_ids")}
    assert len(named["Jane"]["variants"]) == 9 and len(named["Paul"]["variants"]) == 8
    assert named["Paul"]["variant_ids"]["happy"] == variant_id("en_paul_happy")
    assert named["Paul"]["maps_to"] == "fake-tts:bob"  # an English male voice
    assert named["Jane"]["maps_to"] == "fake-tts:alice"
    assert {f.name for f in FAMILIES} <= set(named)
    with live_server.client() as client:
        happy = named["Paul"]["variant_ids"]["happy"]
        spoken = client.post("/api/tts/generate", json={"input": "Hi!", "voice_id": happy})
        assert spoken.json()["code"] == 0
