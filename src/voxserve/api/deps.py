"""FastAPI dependencies: the services built at startup, and the request's owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from voxserve.bootstrap import Services
from voxserve.core.voices import VoiceService
from voxserve.storage.protocol import Owner


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


async def get_owner(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Owner:
    owner = await services.auth.authenticate(presented_key(request))
    request.state.owner_id = owner.id
    return owner


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentOwner = Annotated[Owner, Depends(get_owner)]


def public_base_url(request: Request, services: Services) -> str:
    """The base of URLs handed to clients: ``settings.public_url`` (behind a proxy), else the
    URL this request came to."""
    return services.settings.public_url or str(request.base_url)


def get_voice_service(services: ServicesDep) -> VoiceService:
    return services.voices


VoiceServiceDep = Annotated[VoiceService, Depends(get_voice_service)]
