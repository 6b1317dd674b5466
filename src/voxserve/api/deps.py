"""FastAPI dependencies: the request's owner and the services routes use, one alias each.

Routes never see the service container, storage or engines: each asks for the services it
uses. The three metered services come only through ``metered`` dependencies, so a route that
speaks, transcribes or chats is metered by declaring what it uses: a request it refuses (a bad
field, an unknown voice...) still leaves its usage record, with its status and nothing charged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from voxserve.audio.pool import PoolState
from voxserve.bootstrap import Services
from voxserve.core.auth import AuthService, Principal
from voxserve.core.batch import NEEDS_POSTGRES, BatchService
from voxserve.core.chat import ChatService
from voxserve.core.client_tokens import ClientTokenService
from voxserve.core.fetching import Fetched
from voxserve.core.files import FileService
from voxserve.core.generations import GenerationService
from voxserve.core.models_listing import ModelListing
from voxserve.core.realtime import RealtimeTranscriptionService
from voxserve.core.realtime_speech import RealtimeSpeechService
from voxserve.core.speech import SpeechService
from voxserve.core.transcription import TranscriptionService
from voxserve.core.types import Owner
from voxserve.core.usage import UsageService, track_request
from voxserve.core.voices import VoiceService
from voxserve.errors import Forbidden, InvalidRequest, ServiceUnavailable, Unauthorized, VoxError
from voxserve.metrics import Metrics
from voxserve.settings import Settings

T = TypeVar("T")

CLIENT_GONE = 499
"""The status recorded for a request whose client went away (nginx's convention)."""


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


_ServicesDep = Annotated[Services, Depends(get_services)]


bearer_key = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (`voxserve keys create`), sent as `Authorization: Bearer <key>`. "
    "A server on loopback without keys needs none.",
)
header_key = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    scheme_name="apiKey",
    description="The same API key, sent as `x-api-key: <key>`.",
)


SESSION_COOKIE = "voxserve_session"
"""The web app's session cookie (HttpOnly, SameSite=Lax; set by ``POST /web/session``)."""

session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The web app's session cookie, set by signing in at `/`.",
)


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return header or None


async def get_principal(
    services: _ServicesDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_key)],
    header: Annotated[str | None, Depends(header_key)],
    cookie: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    """Who the request runs as: the presented key's owner, else the web session's (declares
    the three security schemes in the OpenAPI document). A key wins over the cookie.

    Raises:
        Unauthorized: no key and no live session, or a wrong or revoked key (keyless loopback
            mode excepted).
    """
    secret = presented_key(bearer, header)
    if secret is None and cookie:
        principal = await services.auth.session_principal(cookie)
        if principal is not None:
            return principal
        if not await services.auth.open_keyless():
            raise Unauthorized("Your session has ended: sign in again.")
    return await services.auth.principal(secret)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_owner(principal: CurrentPrincipal) -> Owner:
    """The owner the request runs as (see ``get_principal``)."""
    return principal.owner


CurrentOwner = Annotated[Owner, Depends(get_owner)]


async def get_admin(principal: CurrentPrincipal) -> Principal:
    """An operator (an admin key, or keyless loopback mode).

    Raises:
        Forbidden: the key is not an admin key.
    """
    if not principal.admin:
        raise Forbidden("This needs an admin key (voxserve keys create --admin).")
    return principal


CurrentAdmin = Annotated[Principal, Depends(get_admin)]


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def public_base_url(request: Request) -> str:
    """The base of URLs handed to clients (``audio_url``, signed file URLs):
    ``settings.public_url``; without it, the URL this request came to only when its host is a
    loopback one (a ``Host`` header is the client's to choose, so it is never trusted further).

    Raises:
        ServiceUnavailable: no ``public_url`` and a request to a host that is not loopback.
    """
    public_url = get_services(request).settings.public_url
    if public_url:
        return public_url
    host = (request.url.hostname or "").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return str(request.base_url)
    raise ServiceUnavailable(
        "This answer holds a URL of this server, and the server does not know its public "
        "address: set VOXSERVE_PUBLIC_URL (e.g. https://speech.example.com)."
    )


def status_of(exc: BaseException) -> int:
    """The HTTP status a request that raised ``exc`` answers."""
    if isinstance(exc, VoxError):
        return exc.status
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, HTTPException):
        return exc.status_code
    return CLIENT_GONE if isinstance(exc, asyncio.CancelledError) else 500


def metered(
    endpoint: str, service: Callable[[Services], T]
) -> Callable[[Owner, Services], AsyncIterator[T]]:
    """A dependency that gives the route ``service`` and records a refusal as ``endpoint``.

    Work that reached ``UsageService.metered`` has its record already (``track_request`` tells);
    a request without an authenticated owner (401) cannot be attributed and is not recorded.
    """

    async def dependency(owner: CurrentOwner, services: _ServicesDep) -> AsyncIterator[T]:
        with track_request() as tracker:
            try:
                yield service(services)
            except BaseException as exc:
                if not tracker.recorded:
                    await services.usage.record_failure(owner.id, endpoint, status_of(exc))
                raise

    dependency.metered_as = endpoint  # type: ignore[attr-defined]
    return dependency


def _service(pick: Callable[[Services], T]) -> Callable[[Request], T]:
    def dependency(request: Request) -> T:
        return pick(get_services(request))

    return dependency


SpeechDep = Annotated[SpeechService, Depends(metered("speech", lambda s: s.speech))]
TranscriptionDep = Annotated[
    TranscriptionService, Depends(metered("transcription", lambda s: s.transcription))
]
ChatDep = Annotated[ChatService, Depends(metered("chat", lambda s: s.chat))]
VoiceServiceDep = Annotated[VoiceService, Depends(_service(lambda s: s.voices))]
FileServiceDep = Annotated[FileService, Depends(_service(lambda s: s.files))]
GenerationServiceDep = Annotated[GenerationService, Depends(_service(lambda s: s.generations))]
UsageServiceDep = Annotated[UsageService, Depends(_service(lambda s: s.usage))]
AuthServiceDep = Annotated[AuthService, Depends(_service(lambda s: s.auth))]
UrlFetchDep = Annotated[
    Callable[..., Awaitable[Fetched]], Depends(_service(lambda s: s.transcription.open_url))
]
"""Fetch a user-given URL as safely as ``file_url`` (``fetch(url, field=...)``), spooled to a
temporary file the caller closes; not metered."""
EngineStatusDep = Annotated[
    Callable[[], list[dict[str, Any]]], Depends(_service(lambda s: s.engines.status))
]
"""The engines' load and queue state, for ``/ready``."""
DecodeStateDep = Annotated[Callable[[], PoolState], Depends(_service(lambda s: s.decoding.state))]
"""The decode pool's state, for ``/ready``."""


def model_listing(request: Request) -> ModelListing:
    """What ``GET /v1/models`` lists (reads the services; meters nothing)."""
    s = get_services(request)
    return ModelListing(s.engines, s.speech, s.transcription, s.chat)


ModelListingDep = Annotated[ModelListing, Depends(model_listing)]


def default_speech_engine(request: Request) -> str | None:
    """The engine speech uses when no model is named (None when there is none)."""
    try:
        return get_services(request).speech.default_engine().name
    except VoxError:
        return None


DefaultSpeechEngineDep = Annotated[str | None, Depends(default_speech_engine)]
SettingsDep = Annotated[Settings, Depends(_service(lambda s: s.settings))]
MetricsDep = Annotated[Metrics, Depends(_service(lambda s: s.metrics))]
"""This process's Prometheus metrics (``/metrics``)."""


def batch_service(request: Request) -> BatchService:
    """Batch jobs (each request a worker runs is metered there, as its owner's).

    Raises:
        InvalidRequest: the server has no PostgreSQL (batch jobs need its job queue).
    """
    service = get_services(request).batch
    if service is None:
        raise InvalidRequest(NEEDS_POSTGRES)
    return service


BatchServiceDep = Annotated[BatchService, Depends(batch_service)]


# ------------------------------------------------------------------ realtime sockets


def _socket_service(pick: Callable[[Services], T]) -> Callable[[WebSocket], T]:
    def dependency(websocket: WebSocket) -> T:
        services: Services = websocket.app.state.services
        return pick(services)

    return dependency


RealtimeSTTDep = Annotated[
    RealtimeTranscriptionService, Depends(_socket_service(lambda s: s.realtime_stt))
]
"""Realtime transcription (metered per session inside the service)."""
RealtimeSpeechDep = Annotated[
    RealtimeSpeechService, Depends(_socket_service(lambda s: s.realtime_speech))
]
"""Realtime speech (metered per session inside the service)."""
ClientTokensSocketDep = Annotated[
    ClientTokenService, Depends(_socket_service(lambda s: s.client_tokens))
]
"""Browser tokens, checked at a socket's handshake."""
ClientTokensDep = Annotated[ClientTokenService, Depends(_service(lambda s: s.client_tokens))]
"""Browser tokens, issued by ``POST /v1/client/sessions``."""
SocketAuthDep = Annotated[AuthService, Depends(_socket_service(lambda s: s.auth))]
"""Authentication for a socket's handshake (see ``api.sockets.authenticate``)."""
