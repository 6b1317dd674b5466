"""The web app over HTTP: its pages and static files (``voxserve.web``), and signing a browser
in and out (``/web/session``). Every page then calls the public API with the session cookie."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Scope

from voxserve.api.deps import (
    SESSION_COOKIE,
    AuthServiceDep,
    CurrentPrincipal,
    SettingsDep,
    session_cookie,
)
from voxserve.core.auth import Principal

router = APIRouter(tags=["web app"])
pages = APIRouter(include_in_schema=False)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""No inline script or style anywhere: every page's code is a static file of the package."""
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class SignInRequest(BaseModel):
    model_config = ConfigDict(
        use_attribute_docstrings=True, json_schema_extra={"examples": [{"api_key": "vx-..."}]}
    )

    api_key: str = Field(min_length=1, max_length=512)
    """The API key to sign in with (never stored in the browser: the session cookie is)."""


class WebSessionInfo(BaseModel):
    """Who the browser is signed in as."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    owner_id: str
    owner_name: str
    admin: bool
    """An operator: may manage every owner, key and balance."""
    keyless: bool
    """Signed in as the local owner of a loopback server without keys (no sign-out)."""
    credits: int | None
    """The owner's balance; null is unlimited."""


def session_info(principal: Principal) -> WebSessionInfo:
    owner = principal.owner
    return WebSessionInfo(
        owner_id=owner.id,
        owner_name=owner.name,
        admin=principal.admin,
        keyless=principal.key_id is None,
        credits=owner.credits,
    )


@router.post("/web/session", response_model=WebSessionInfo)
async def sign_in(
    body: SignInRequest,
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    settings: SettingsDep,
) -> WebSessionInfo:
    """Sign in with an API key: sets a new ``HttpOnly``, ``SameSite=Lax`` session cookie
    (``Secure`` over HTTPS) and ends the session the browser had."""
    previous = request.cookies.get(SESSION_COOKIE)
    signed = await auth.sign_in(body.api_key.strip(), previous_token=previous)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=int(settings.web.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=secure_request(request, settings.public_url),
        path="/",
    )
    return session_info(signed.principal)


@router.get("/web/session", response_model=WebSessionInfo)
async def current_session(principal: CurrentPrincipal) -> WebSessionInfo:
    """Who the browser (or key) runs as; 401 when signed out or the session ended."""
    return session_info(principal)


@router.delete("/web/session", status_code=204)
async def sign_out(
    auth: AuthServiceDep, cookie: Annotated[str | None, Depends(session_cookie)]
) -> Response:
    """Sign out: the session ends on the server and the cookie is cleared."""
    if cookie:
        await auth.sign_out(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


def secure_request(request: Request, public_url: str | None) -> bool:
    """The browser talks HTTPS to us (directly, or to the configured public URL)."""
    return request.url.scheme == "https" or (public_url or "").startswith("https://")


@pages.get("/")
async def index() -> HTMLResponse:
    """The web app's one page: the script draws each view (``#/dashboard``, ``#/voices``...)."""
    html = resources.files("voxserve.web").joinpath("index.html").read_text("utf-8")
    return HTMLResponse(html, headers=PAGE_HEADERS)


class _StaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


def install_web(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their files at ``/web/static``."""
    app.include_router(pages)
    static = resources.files("voxserve.web").joinpath("static")
    app.mount("/web/static", _StaticFiles(directory=str(static)), name="web-static")
