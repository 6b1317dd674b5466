"""Closing a realtime socket the client already left is not a failure (it was once, and the
session's usage record said 500 when a client closed right after ``transcription.done``)."""

from __future__ import annotations

from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxserve.api.sockets import EventSender


class FakeGoneWebSocket:
    """A fake socket whose client left while the server still saw it connected."""

    client_state = WebSocketState.CONNECTED

    async def close(self, code: int = 1000, reason: str = "") -> None:
        raise WebSocketDisconnect(1006)


async def test_closing_a_socket_the_client_left_raises_nothing() -> None:
    await EventSender(FakeGoneWebSocket()).close(1000)  # type: ignore[arg-type]
