"""What every realtime WebSocket shares: authentication and admission at the handshake, reading
client messages within limits, sending events one at a time.

A socket is refused before it is accepted, with a real HTTP status in the shape's envelope
(401 no or wrong key, 429 session limits, 400/503 unknown or missing model): clients see a
failed handshake, never an accepted socket that closes at once. Keys travel in the
``Authorization: Bearer`` or ``x-api-key`` header, never in the query string; a web page
offers a browser token as ``Sec-WebSocket-Protocol: realtime, <token>`` (the server answers
with ``realtime``). On shutdown the
server (uvicorn) closes open sockets with 1012, which ends each session's loop as a disconnect.

Close codes: 1000 normal end, 1008 policy (a closed session refused), 1011 internal error,
1012 server restart (shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxserve.api.browser import loopback_host, loopback_name
from voxserve.api.errors import from_vox
from voxserve.api.shapes import ErrorInfo
from voxserve.core.auth import AuthService
from voxserve.core.client_tokens import ClientTokenService
from voxserve.core.realtime import SessionGate
from voxserve.errors import Forbidden, InvalidRequest, PayloadTooLarge, Unauthorized, VoxError

log = logging.getLogger(__name__)
REALTIME_SUBPROTOCOL = "realtime"
Render = Callable[[ErrorInfo], dict[str, Any]]
T = TypeVar("T")


class IdleTimeout(VoxError):
    """No audio for the configured time (the session ends with an ``error`` event)."""

    status = 408
    code = "idle_timeout"


def presented_socket_key(websocket: WebSocket) -> str | None:
    """The key of ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    auth = websocket.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return websocket.headers.get("x-api-key") or None


@dataclass(frozen=True)
class SocketIdentity:
    owner_id: str
    model: str | None
    """The model asked for (a browser token's own model when the URL names none)."""
    subprotocol: str | None
    """``realtime`` when the client authenticated with ``Sec-WebSocket-Protocol``."""


async def authenticate(
    websocket: WebSocket,
    auth: AuthService,
    tokens: ClientTokenService,
    render: Render,
    model: str | None,
) -> SocketIdentity | None:
    """Who opens the socket: a browser token (``Sec-WebSocket-Protocol: realtime, <token>``,
    bound to its owner and model) or an API key; None after refusing the handshake (401)."""
    try:
        return await _identify(websocket, auth, tokens, model)
    except VoxError as exc:
        await refuse(websocket, exc, render)
        return None


async def _identify(
    websocket: WebSocket, auth: AuthService, tokens: ClientTokenService, model: str | None
) -> SocketIdentity:
    offered = [p.strip() for p in websocket.scope.get("subprotocols", [])]
    token = next((p for p in offered if tokens.looks_like_token(p)), None)
    if token is None:
        key = presented_socket_key(websocket)
        if key is None and await auth.open_keyless():
            check_keyless_origin(websocket)
        owner = await auth.authenticate(key)
        return SocketIdentity(owner.id, model, None)
    found = tokens.verify(token)
    if model is not None and model != found.model:
        raise Unauthorized(f"This client token is for the model '{found.model}', not '{model}'.")
    return SocketIdentity(found.owner_id, found.model, REALTIME_SUBPROTOCOL)


async def serve_admitted(
    websocket: WebSocket,
    who: SocketIdentity,
    gate: SessionGate,
    render: Render,
    check: Callable[[], T],
    serve: Callable[[T], Awaitable[None]],
) -> None:
    """The handshake after authentication, the same on every realtime socket: ``check`` (the
    model or engine asked for), then a session place of the owner's (``gate``); either one's
    error refuses the handshake in the shape's envelope. Otherwise accept and ``serve`` with
    what ``check`` returned, holding the place until ``serve`` returns."""
    with contextlib.ExitStack() as admission:
        try:
            checked = check()
            admission.enter_context(gate.admit(who.owner_id))
        except VoxError as exc:
            await refuse(websocket, exc, render)
            return
        await websocket.accept(subprotocol=who.subprotocol)
        await serve(checked)


def check_keyless_origin(websocket: WebSocket) -> None:
    """A keyless server's sockets, like its HTTP routes, answer only loopback host names and
    pages of this machine: browsers let any site open a socket to 127.0.0.1 (and send its
    ``Origin``), so another site could otherwise listen or speak as the local owner.

    Raises:
        Forbidden: a foreign ``Host`` (DNS rebinding) or a page of another site.
    """
    if not loopback_host(websocket):
        raise Forbidden("Without API keys this server answers only loopback host names.")
    origin = websocket.headers.get("origin")
    if origin and not loopback_name(urlsplit(origin).netloc):
        raise Forbidden("Without API keys this server refuses sockets from other sites.")


async def refuse(websocket: WebSocket, exc: VoxError, render: Render) -> None:
    """Refuse the handshake with ``exc``'s HTTP status and body (before ``accept``)."""
    info = from_vox(exc)
    headers = {"Retry-After": str(info.retry_after)} if info.retry_after else None
    response = JSONResponse(render(info), status_code=info.status, headers=headers)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:  # a server without the denial extension: a plain 403
        await websocket.close(code=1008, reason=exc.message[:120])


class EventSender:
    """Sends JSON events; one at a time (the reader and the writer task both send)."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._lock = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> bool:
        """Send one event; False when the socket is gone."""
        async with self._lock:
            if self._ws.client_state is not WebSocketState.CONNECTED:
                return False
            try:
                await self._ws.send_text(json.dumps(event))
            except (WebSocketDisconnect, RuntimeError, OSError):
                return False
            return True

    async def close(self, code: int = 1000, reason: str = "") -> None:
        async with self._lock:
            if self._ws.client_state is WebSocketState.CONNECTED:
                try:
                    await self._ws.close(code=code, reason=reason[:120])
                except (WebSocketDisconnect, RuntimeError, OSError):
                    log.debug("socket already closed")  # the client left first: no failure


class MessageReader:
    """Reads client messages: each one a JSON object with a ``type``, within the size limit.

    ``next`` returns a message dict, raises ``InvalidRequest`` for a bad message (the session
    answers an ``error`` event and goes on), ``IdleTimeout`` when no audio came for
    ``idle_seconds`` (``audio_arrived`` resets that clock), and ``WebSocketDisconnect`` when
    the client went away.
    """

    def __init__(self, websocket: WebSocket, *, max_bytes: int, idle_seconds: float) -> None:
        self._ws = websocket
        self._max_bytes = max_bytes
        self._idle = idle_seconds
        self._last_audio = time.monotonic()
        self.idle_enabled = True

    def audio_arrived(self) -> None:
        self._last_audio = time.monotonic()

    async def next(self) -> dict[str, Any]:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            if len(data) > self._max_bytes:
                raise PayloadTooLarge(f"Messages are limited to {self._max_bytes} bytes.")
            raise InvalidRequest("Send JSON text messages; binary frames are not accepted.")
        if len(text) > self._max_bytes:
            raise PayloadTooLarge(f"Messages are limited to {self._max_bytes} bytes.")
        return parse_message(text)

    async def _receive(self) -> MutableMapping[str, Any]:
        if not self.idle_enabled:
            return await self._ws.receive()
        left = self._last_audio + self._idle - time.monotonic()
        try:
            return await asyncio.wait_for(self._ws.receive(), timeout=max(left, 0.0))
        except TimeoutError:
            raise IdleTimeout(
                f"No audio received for {self._idle:.0f} s; the session ended."
            ) from None


def parse_message(text: str) -> dict[str, Any]:
    """A client message: a JSON object with a string ``type``.

    Raises:
        InvalidRequest: not JSON, not an object, or no ``type``.
    """
    try:
        message = json.loads(text)
    except ValueError:
        raise InvalidRequest("The message is not valid JSON.") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise InvalidRequest("A message is a JSON object with a 'type'.", field="type")
    return message


Handle = Callable[[dict[str, Any]], Awaitable[None]]
SendError = Callable[[VoxError], Awaitable[None]]


async def serve_session(
    sender: EventSender,
    reader: MessageReader,
    handle: Handle,
    write: Callable[[], Coroutine[Any, Any, None]],
    send_error: SendError,
) -> None:
    """Run a session's reader (client messages to ``handle``) and writer (``write``: events
    until the session is done) until either ends, then close with 1000.

    A bad message gets ``send_error`` and the session goes on; an idle timeout gets
    ``send_error`` and ends it; a disconnect ends it at once (the caller's session closes, which
    stops its engine work).
    """

    async def read() -> None:
        while True:
            try:
                await handle(await reader.next())
            except WebSocketDisconnect:
                return
            except IdleTimeout as exc:
                await send_error(exc)
                return
            except VoxError as exc:
                await send_error(exc)

    tasks = {asyncio.create_task(read()), asyncio.create_task(write())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
    await sender.close(1000)
