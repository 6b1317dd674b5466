"""#14 item 3: once any key has existed, revoking the last one does not reopen keyless mode."""

from __future__ import annotations

import httpx
import pytest
from openai import AuthenticationError, OpenAI

from tests.support.live_server import run_server
from voxserve.bootstrap import open_services
from voxserve.engines.fake import FakeSTTEngine, FakeTTSEngine
from voxserve.settings import Settings


async def create_and_revoke(settings: Settings) -> str:
    async with open_services(settings, engines=[FakeTTSEngine()]) as services:
        new = await services.auth.create_key("only")
        await services.auth.revoke_key(new.key.id)
        return new.secret


def voices(base_url: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{base_url}/v1/audio/voices", headers=headers, timeout=10)


async def test_revoking_the_last_key_keeps_keys_required(settings: Settings) -> None:
    revoked = await create_and_revoke(settings)
    with run_server(settings, [FakeTTSEngine(), FakeSTTEngine()]) as server:
        assert voices(server.url, None).status_code == 401
        assert voices(server.url, "vx-anything").status_code == 401
        answer = voices(server.url, revoked)
        assert answer.status_code == 401
        assert "revoked" in answer.json()["message"]
        client = OpenAI(base_url=f"{server.url}/v1", api_key=revoked)
        with pytest.raises(AuthenticationError):
            client.models.list()


async def test_the_operator_may_reopen_keyless_mode_but_a_revoked_key_stays_refused(
    settings: Settings,
) -> None:
    revoked = await create_and_revoke(settings)
    reopened = settings.model_copy(update={"keyless_after_revocation": True})
    with run_server(reopened, [FakeTTSEngine(), FakeSTTEngine()]) as server:
        assert voices(server.url, None).status_code == 200
        assert voices(server.url, revoked).status_code == 401
