"""Web sessions (#11): sign in with a key sets an HttpOnly SameSite=Lax cookie kept server-side;
the cookie authenticates the public API; sign-out, revocation and expiry end it; signing in
again rotates it; keys and owners over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.live_server import LiveServer, run_server
from tests.support.web_keys import make_keys
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings, WebSettings


@pytest.fixture
async def keyed(settings: Settings) -> tuple[Settings, str, str]:
    (user,) = await make_keys(settings, "alice")
    (admin,) = await make_keys(settings, "root", admin=True)
    return settings, user, admin


@pytest.fixture
def server(keyed: tuple[Settings, str, str]) -> Iterator[LiveServer]:
    with run_server(keyed[0], [FakeTTSEngine(), FakeSTTEngine()]) as live:
        yield live


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    return client.post("/web/session", json={"api_key": key})


def test_sign_in_sets_an_httponly_lax_cookie_that_authenticates_the_api(
    server: LiveServer, keyed: tuple[Settings, str, str]
) -> None:
    with server.client() as client:
        answer = sign_in(client, keyed[1])
        assert answer.status_code == 200, answer.text
        assert answer.json()["owner_name"] == "alice"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        assert client.get("/v1/audio/voices").status_code == 200
        assert client.get("/web/session").json()["admin"] is False


def test_a_wrong_or_missing_key_does_not_sign_in(server: LiveServer) -> None:
    with server.client() as client:
        assert sign_in(client, "vx-wrong").status_code == 401
        assert "set-cookie" not in sign_in(client, "vx-wrong").headers
        assert client.get("/v1/audio/voices").status_code == 401


def test_sign_out_ends_the_session_on_the_server(
    server: LiveServer, keyed: tuple[Settings, str, str]
) -> None:
    with server.client() as client:
        sign_in(client, keyed[1])
        token = client.cookies["voxserve_session"]
        assert client.delete("/web/session").status_code == 204
    with server.client() as replay:  # the old cookie, replayed, is refused
        replay.cookies.set("voxserve_session", token)
        answer = replay.get("/v1/audio/voices")
        assert answer.status_code == 401
        assert "session has ended" in answer.json()["message"]


def test_signing_in_again_rotates_the_session(
    server: LiveServer, keyed: tuple[Settings, str, str]
) -> None:
    with server.client() as client:
        sign_in(client, keyed[1])
        first = client.cookies["voxserve_session"]
        sign_in(client, keyed[1])
        second = client.cookies["voxserve_session"]
    assert first != second
    with server.client() as replay:
        replay.cookies.set("voxserve_session", first)
        assert replay.get("/web/session").status_code == 401
        replay.cookies.set("voxserve_session", second)
        assert replay.get("/web/session").status_code == 200


def test_revoking_the_key_signs_its_sessions_out(
    server: LiveServer, keyed: tuple[Settings, str, str]
) -> None:
    with server.client() as client:
        sign_in(client, keyed[1])
        own = client.get("/v1/keys").json()["data"]
        assert [k["name"] for k in own] == ["alice"]
        assert client.delete(f"/v1/keys/{own[0]['id']}").json()["revoked_at"]
        assert client.get("/v1/audio/voices").status_code == 401


async def test_an_expired_session_is_signed_out(settings: Settings) -> None:
    short = settings.model_copy(update={"web": WebSettings(session_hours=1 / 3600)})
    (user,) = await make_keys(short, "alice")
    with run_server(short, [FakeTTSEngine()]) as live, live.client() as client:
        sign_in(client, user)
        assert client.get("/web/session").status_code == 200
        await asyncio.sleep(1.2)
        assert client.get("/web/session").status_code == 401


def test_an_admin_manages_owners_keys_and_credits_and_a_user_may_not(
    server: LiveServer, keyed: tuple[Settings, str, str]
) -> None:
    with server.client(keyed[1]) as user:
        assert user.get("/v1/owners").status_code == 403
        assert user.post("/v1/keys", json={"name": "x", "admin": True}).status_code == 403
    with server.client(keyed[2]) as admin:
        owner = admin.post("/v1/owners", json={"name": "bob", "credits": 10}).json()
        assert owner["credits"] == 10
        topped = admin.post(f"/v1/owners/{owner['id']}/credits", json={"amount": 90}).json()
        assert topped["credits"] == 100
        key = admin.post("/v1/keys", json={"name": "bob's", "owner_id": owner["id"]}).json()
        assert key["secret"].startswith("vx-")
        names = {o["name"] for o in admin.get("/v1/owners").json()["data"]}
        assert {"alice", "root", "bob"} <= names
    with server.client(key["secret"]) as bob:
        assert bob.get("/v1/usage").json()["balance"] == 100


def test_keyless_loopback_opens_signed_in_as_the_local_owner(live_server: LiveServer) -> None:
    with live_server.client() as client:
        info = client.get("/web/session").json()
        assert info["keyless"] is True and info["owner_id"] == "local"


async def test_the_cookie_is_secure_behind_https(settings: Settings) -> None:
    https = settings.model_copy(update={"public_url": "https://voice.example"})
    (user,) = await make_keys(https, "alice")
    with run_server(https, [FakeTTSEngine()]) as live, live.client() as client:
        assert "Secure" in sign_in(client, user).headers["set-cookie"]
