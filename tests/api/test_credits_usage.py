"""Credits and usage for every shape: one credit per character, nothing charged for failures,
402 before any audio when the balance is short, a usage record per request, ``GET /v1/usage``
and ``voxserve usage``."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer, run_server
from voxserve.bootstrap import open_services
from voxserve.cli.main import app as cli
from voxserve.core import speech as speech_module
from voxserve.core.generations import GenerationService
from voxserve.core.speech import SpeechRequest
from voxserve.engines.fake import FakeChatEngine, FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings

VOICE = "fake-tts:alice"


@dataclass
class Server:
    live: LiveServer
    engine: FakeTTSEngine
    settings: Settings
    keys: dict[str, str]
    """API key by owner name."""
    owners: dict[str, str]
    """Owner id by owner name."""

    def client(self, owner: str) -> httpx.Client:
        return self.live.client(self.keys[owner])


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start a server whose owners have the given balances (None: unlimited)."""
    with_stack: list[Any] = []

    def make(engine: FakeTTSEngine | None = None, **balances: int | None) -> Server:
        engine = engine or FakeTTSEngine()
        settings = Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=0)

        async def keys() -> tuple[dict[str, str], dict[str, str]]:
            async with open_services(settings, engines=[engine]) as services:
                made = {
                    n: await services.auth.create_key(n, credits=c) for n, c in balances.items()
                }
            return {n: k.secret for n, k in made.items()}, {n: k.owner.id for n, k in made.items()}

        secrets, owners = asyncio.run(keys())
        context = run_server(settings, [engine, FakeSTTEngine(), FakeChatEngine()])
        live = context.__enter__()
        with_stack.append(context)
        return Server(live, engine, settings, secrets, owners)

    yield make
    for context in with_stack:
        context.__exit__(None, None, None)


def usage(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/usage", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def balance(client: httpx.Client) -> int | None:
    return usage(client)["balance"]


TEXT_1234 = "The quick brown fox jumps over the lazy dog. " * 27 + "Nineteen chars end."
"""Exactly 1,234 characters in 28 sentences, with spaces between them."""


def gateway(client: httpx.Client, text: str, **body: Any) -> httpx.Response:
    return client.post(
        "/api/tts/generate",
        json={"input": text, "voice_id": VOICE, "response_format": "wav", **body},
    )


# -------------------------------------------------------------------------------- characters


def test_1234_characters_cost_exactly_1234_credits(start: Callable[..., Server]) -> None:
    server = start(alice=5000)
    assert len(TEXT_1234) == 1234
    with server.client("alice") as client:
        data = gateway(client, TEXT_1234).json()["data"]
        assert data["credits_used"] == 1234
        assert data["chunks"] == 2
        report = usage(client)
    assert report["balance"] == 5000 - 1234
    assert report["totals"]["credits"] == report["totals"]["characters"] == 1234
    assert report["records"][0]["characters"] == 1234
    assert report["records"][0]["engine"] == "fake-tts"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/audio/speech", {"voice_id": VOICE, "response_format": "wav"}),
        ("/v1/audio/speech", {"voice_id": VOICE, "stream": True}),
        ("/v1/audio/speech", {"voice": "alloy", "model": "tts-1"}),
        ("/v1/audio/speech", {"voice": "alloy", "model": "tts-1", "stream_format": "sse"}),
        ("/api/tts/stream", {"voice_id": VOICE}),
    ],
)
def test_every_shape_charges_one_credit_per_character_tags_excluded(
    start: Callable[..., Server], path: str, body: dict[str, Any]
) -> None:
    server = start(alice=1000)
    text = "[emotion=happy]Hello there. [pace=slow]How are you today?"
    spoken = len("Hello there. How are you today?")
    with server.client("alice") as client:
        assert client.post(path, json={"input": text, **body}).status_code == 200
        assert balance(client) == 1000 - spoken


# ---------------------------------------------------------------------------------- failures


def test_a_failed_request_costs_nothing(start: Callable[..., Server]) -> None:
    server = start(FakeTTSEngine(fail_on="explode"), alice=100)
    with server.client("alice") as client:
        failed = gateway(client, "Please explode.")
        assert (failed.status_code, failed.json()["code"]) == (500, 50001)
        midway = client.post(
            "/api/tts/stream", json={"input": "Fine first. Then explode.", "voice_id": VOICE}
        )
        assert midway.status_code == 200 and "event: error" in midway.text
        body = {"input": "Fine. Then explode.", "voice": "alloy", "response_format": "pcm"}
        openai = client.post("/v1/audio/speech", json=body)
        assert openai.status_code == 200  # raw audio: the stream just ends early
        assert gateway(client, "Bad voice.", voice_id="nobody").status_code == 404
        report = usage(client)
    assert report["balance"] == 100
    assert report["totals"]["credits"] == 0
    assert sorted(r["status"] for r in report["records"]) == [404, 500, 500, 500]
    assert all(r["credits"] == r["characters"] == 0 for r in report["records"])


def test_a_client_that_goes_away_mid_stream_is_refunded_the_pieces_it_did_not_get(
    start: Callable[..., Server],
) -> None:
    server = start(FakeTTSEngine(delay=0.05), alice=2000)
    text = " ".join(f"Sentence number {i} is right here." for i in range(20))
    with server.client("alice") as client:
        body = {"input": text, "voice_id": VOICE}
        with client.stream("POST", "/api/tts/stream", json=body) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not usage(client)["records"]:
            time.sleep(0.05)
        report = usage(client)
    first = len("Sentence number 0 is right here.")  # its audio was going out (#14 item 1)
    assert report["balance"] == 2000 - first
    assert [(r["status"], r["credits"]) for r in report["records"]] == [(499, first)]


# -------------------------------------------------------------------------------- the balance


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/tts/generate", {"voice_id": VOICE}),
        ("/api/tts/stream", {"voice_id": VOICE}),
        ("/v1/audio/speech", {"voice_id": VOICE}),
        ("/v1/audio/speech", {"voice_id": VOICE, "stream": True}),
        ("/v1/audio/speech", {"voice": "alloy"}),
        ("/v1/audio/speech", {"voice": "alloy", "stream_format": "sse"}),
    ],
)
def test_a_balance_of_10_refuses_11_characters_with_402_and_generates_nothing(
    start: Callable[..., Server], path: str, body: dict[str, Any]
) -> None:
    server = start(alice=10)
    with server.client("alice") as client:
        refused = client.post(path, json={"input": "Eleven char", **body})
        assert refused.status_code == 402, refused.text
        assert refused.headers["content-type"] == "application/json"  # a real 402, not SSE
        assert "Not enough credits" in refused.text and "needs 11" in refused.text
        assert server.engine.requests == []  # nothing was generated
        assert balance(client) == 10
        assert client.post(path, json={"input": "Ten chars.", **body}).status_code == 200
        assert balance(client) == 0
        records = usage(client)["records"]
    assert [(r["status"], r["credits"]) for r in records] == [(200, 10), (402, 0)]


def test_a_short_balance_is_refused_before_ref_audio_is_cloned(
    start: Callable[..., Server],
) -> None:
    server = start(alice=5)
    sample = base64.b64encode(tone_wav(3.0)).decode()
    with server.client("alice") as client:
        refused = client.post(
            "/v1/audio/speech", json={"input": "Eleven char", "ref_audio": sample}
        )
        assert refused.status_code == 402, refused.text
        assert balance(client) == 5
    assert server.engine.clones == 0


def test_a_failure_while_encoding_the_end_refunds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credits are kept only for audio that was delivered whole: the encoder's last bytes too."""
    engine = FakeTTSEngine()
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=0)

    class BrokenTail:
        def encode(self, samples: object) -> bytes:
            return b"x"

        def finish(self) -> bytes:
            raise RuntimeError("encoder broke at the end")

    monkeypatch.setattr(speech_module, "make_stream_encoder", lambda fmt, rate: BrokenTail())

    async def run() -> tuple[int | None, list[tuple[int, int]]]:
        async with open_services(settings, engines=[engine]) as services:
            key = await services.auth.create_key("alice", credits=100)
            request = SpeechRequest(key.owner.id, "Hello there.", voice_id=VOICE)
            prepared = await services.speech.prepare(request)
            with pytest.raises(RuntimeError):
                async for _ in services.speech.encoded(prepared, "mp3"):
                    pass
            rows = await services.storage.usage.records(key.owner.id)
            return await services.usage.balance(key.owner.id), [(r.status, r.credits) for r in rows]

    assert asyncio.run(run()) == (100, [(500, 0)])


def test_a_generation_that_cannot_be_stored_is_refunded(
    start: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(GenerationService, "save", disk_full)
    server = start(alice=100)
    with server.client("alice") as client:
        assert gateway(client, "Hello there.").status_code == 500
        assert balance(client) == 100
        records = usage(client)["records"]
    assert [(r["status"], r["credits"]) for r in records] == [(500, 0)]


def test_gateway_402_has_its_code(start: Callable[..., Server]) -> None:
    server = start(alice=10)
    with server.client("alice") as client:
        refused = gateway(client, "Eleven char")
    assert refused.json()["code"] == 40201
    assert "balance is 10" in refused.json()["message"]


def test_concurrent_requests_cannot_overspend(start: Callable[..., Server]) -> None:
    server = start(FakeTTSEngine(delay=0.05, max_concurrency=4), alice=10)

    async def both() -> list[int]:
        headers = {"Authorization": f"Bearer {server.keys['alice']}"}
        async with httpx.AsyncClient(base_url=server.live.url, headers=headers, timeout=30) as c:
            body = {"input": "Six ch", "voice_id": VOICE}
            replies = await asyncio.gather(
                *(c.post("/api/tts/generate", json=body) for _ in range(2))
            )
        return sorted(r.status_code for r in replies)

    assert asyncio.run(both()) == [200, 402]
    with server.client("alice") as client:
        assert balance(client) == 4


def test_unlimited_owner_and_cloning_is_free(start: Callable[..., Server]) -> None:
    server = start(rich=None, poor=0)
    with server.client("rich") as rich, server.client("poor") as poor:
        assert gateway(rich, "x" * 3000).status_code == 200
        assert balance(rich) is None
        sample = base64.b64encode(tone_wav(6.0)).decode()
        cloned = poor.post("/api/tts/voices/clone", json={"name": "v", "ref_audio": sample})
        assert cloned.json()["code"] == 0  # voices cost no credits; speaking does
        assert gateway(poor, "Hi.", voice_id=cloned.json()["data"]["id"]).status_code == 402


# ------------------------------------------------------------------------------ usage records


def test_every_metered_request_leaves_a_record(start: Callable[..., Server]) -> None:
    server = start(alice=None)
    with server.client("alice") as client:
        assert gateway(client, "Hello.").status_code == 200
        assert gateway(client, "a" * 5001).status_code == 422
        assert client.post("/api/tts/generate", json={"input": "No voice."}).status_code == 400
        assert (
            client.post(
                "/v1/audio/speech", json={"input": "Hi.", "voice_id": VOICE, "speed": 9}
            ).status_code
            == 422
        )
        files = {"file": ("a.wav", tone_wav(3.2), "audio/wav")}
        assert (
            client.post(
                "/v1/audio/transcriptions", files=files, data={"model": "fake-stt"}
            ).status_code
            == 200
        )
        chat = {"model": "fake-chat", "messages": [{"role": "user", "content": "one two three"}]}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
        assert client.get("/v1/audio/voices").status_code == 200  # not metered: no record
        report = usage(client)
    rows = {(r["endpoint"], r["status"]): r for r in report["records"]}
    assert sorted(rows) == [
        ("chat", 200),
        ("speech", 200),
        ("speech", 400),
        ("speech", 422),
        ("transcription", 200),
    ]
    assert len(report["records"]) == 6  # two 422s
    assert rows[("speech", 200)]["characters"] == 6
    assert rows[("transcription", 200)]["audio_seconds"] == pytest.approx(3.2, abs=0.01)
    assert rows[("transcription", 200)]["engine"] == "fake-stt"
    assert rows[("chat", 200)]["tokens"] > 0
    assert all(r["credits"] == 0 for r in report["records"] if r["status"] != 200)
    totals = report["totals"]
    assert (totals["requests"], totals["characters"], totals["credits"]) == (6, 6, 6)
    assert totals["audio_seconds"] == pytest.approx(3.2, abs=0.01)
    assert totals["tokens"] == rows[("chat", 200)]["tokens"]


def test_requests_without_a_valid_key_leave_no_record(start: Callable[..., Server]) -> None:
    server = start(alice=None)
    with server.live.client("vx-wrong") as wrong:
        assert gateway(wrong, "Hello.").status_code == 401
    with server.client("alice") as client:
        assert usage(client)["records"] == []


def test_usage_by_period_and_range(start: Callable[..., Server]) -> None:
    server = start(alice=None, bob=None)
    with server.client("alice") as alice, server.client("bob") as bob:
        for text in ("One.", "Two two.", "Three, three."):
            assert gateway(alice, text).status_code == 200
        assert gateway(bob, "Bob speaks.").status_code == 200
        third = usage(alice)["records"][0]["created_at"]
        before_third = usage(alice, until=third, limit=1)
        assert [r["characters"] for r in before_third["records"]] == [8]
        assert before_third["totals"]["characters"] == 12
        day = usage(alice, until="2999-01-01")
        month = usage(alice, period="month")
        future = usage(alice, since="2999-01-01")
        past = usage(alice, until="2000-01-01")
        limited = usage(alice, limit=1)
        bad = [
            alice.get("/v1/usage", params=p)
            for p in (
                {"period": "year"},
                {"since": "2026-02-01", "until": "2026-01-01"},
                {"limit": -1},
            )
        ]
    assert day["owner_id"] == server.owners["alice"]
    assert [p["characters"] for p in day["periods"]] == [25]
    assert day["periods"][0]["start"].endswith("T00:00:00Z")
    assert month["periods"][0]["start"][8:10] == "01"
    assert future["totals"]["requests"] == 0 and future["records"] == [] and future["periods"] == []
    assert past["totals"]["requests"] == 0 and past["records"] == []
    assert len(limited["records"]) == 1 and limited["totals"]["requests"] == 3
    assert [r.status_code for r in bad] == [422, 422, 422]


def test_cli_prints_usage(start: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    server = start(alice=500)
    with server.client("alice") as client:
        assert gateway(client, "Hello there.").status_code == 200
        assert gateway(client, "Bad.", voice_id="nobody").status_code == 404
    monkeypatch.setenv("VOXSERVE_DATA_DIR", str(server.settings.data_dir))
    monkeypatch.setenv("VOXSERVE_MODELS_DIR", str(server.settings.data_dir / "models"))
    result = CliRunner().invoke(cli, ["usage", "--owner", server.owners["alice"]])
    assert result.exit_code == 0, result.output
    assert "balance 488 credits" in result.output
    assert "total: 2 requests, 12 characters" in result.output
    assert "speech" in result.output and "404" in result.output
    monthly = CliRunner().invoke(
        cli, ["usage", "--owner", server.owners["alice"], "--period", "month"]
    )
    assert monthly.exit_code == 0 and "month" in monthly.output
    unknown = CliRunner().invoke(cli, ["usage", "--owner", "nobody"])
    assert unknown.exit_code == 1 and "not found" in unknown.output
