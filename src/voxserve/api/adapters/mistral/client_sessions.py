"""``POST /v1/client/sessions``: browser tokens for realtime sockets (Mistral's
``client.realtime.sessions.create``). The token is bound to the caller and the model, and
expires after ``ttl_seconds`` (default 900)."""

from __future__ import annotations

from fastapi import APIRouter

from voxserve.api.adapters.mistral.protocol.realtime import (
    ClientSecret,
    ClientSessionRequest,
    ClientSessionResponse,
)
from voxserve.api.deps import ClientTokensDep, CurrentOwner

router = APIRouter()


@router.post("/v1/client/sessions", status_code=201, response_model=ClientSessionResponse)
def create_client_session(
    body: ClientSessionRequest, owner: CurrentOwner, tokens: ClientTokensDep
) -> ClientSessionResponse:
    """A short-lived secret a web page offers as ``Sec-WebSocket-Protocol: realtime, <value>``
    instead of the API key."""
    token = tokens.issue(owner.id, body.model, body.ttl_seconds)
    secret = ClientSecret(value=token.value, expires_at=token.expires_at)
    return ClientSessionResponse(expires_at=token.expires_at, client_secret=secret)
