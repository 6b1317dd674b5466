"""A bug (an exception nothing handles) answers 500 in the shape's own envelope, and the
connection stays usable for the client's next request."""

from __future__ import annotations

import pytest

from tests.support.live_server import LiveServer
from voxserve.core.voices import VoiceService


@pytest.fixture
def broken_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(VoiceService, "list", crash)


@pytest.mark.usefixtures("broken_listing")
def test_mistral_shape_500_keeps_the_connection(live_server: LiveServer) -> None:
    with live_server.client() as client:
        for _ in range(2):  # the second request reuses the connection
            response = client.get("/v1/audio/voices")
            assert response.status_code == 500
            body = response.json()
            assert body["object"] == "error" and body["message"] == "Internal server error."
            assert "a bug" not in response.text
        assert client.get("/health").status_code == 200


@pytest.mark.usefixtures("broken_listing")
def test_gateway_shape_500(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/api/tts/voices/mine")
        assert response.status_code == 500
        assert response.json()["code"] == 50000
        assert client.get("/api/tts/voices/mine").status_code == 500
