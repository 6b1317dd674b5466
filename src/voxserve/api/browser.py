"""What a browser on another site must not do here: the request rules for browsers.

- JSON bodies come as ``application/json`` (or ``+json``); multipart is for uploads and
  urlencoded only for the form routes (``FORM_PATHS``, ``FORM_ROUTES``; the Mistral SDK sends
  it). Anything else, or a body with no content type at all (what a cross-site ``fetch`` of
  a ``Blob`` sends without a CORS preflight), answers 415 before any route reads it.
- A request that changes state with the web session cookie and no key is refused (403) when it
  comes from another site (``Sec-Fetch-Site``, else ``Origin``): the cookie is ``SameSite=Lax``,
  this is the second lock. Signing in is checked the same way (no login CSRF).
- In keyless loopback mode (no key needed at all) only loopback ``Host`` names are answered (no
  DNS rebinding), and cross-site requests are refused whatever their method; a top-level
  navigation (a link to the web app) still opens it.

Requests with an API key (Bearer or ``x-api-key``) are never refused for where they come from: a
page on another site cannot read the key, and servers and SDKs send no ``Origin``.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from voxserve.api.errors import from_vox
from voxserve.api.shapes import ShapeRegistry
from voxserve.errors import Forbidden, UnsupportedMediaType, VoxError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_PATHS = ("/audio/transcriptions", "/audio/translations")
FORM_ROUTES = frozenset({"/voices"})
"""With ``FORM_PATHS`` (path endings): the routes that read HTML-form fields (transcription;
the voice-cloning shape's ``POST /voices`` with a ``voice_url``), the only ones that take
``application/x-www-form-urlencoded``."""
SESSION_PATH = "/web/session"


class BrowserGuardMiddleware:
    """Applies the rules of the module docstring; errors in the path's shape envelope."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        shapes: ShapeRegistry,
        session_cookie: str,
        allowed_origins: list[str],
    ) -> None:
        self.app = app
        self.shapes = shapes
        self.cookie = session_cookie
        self.allowed = frozenset(o.rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await self._check(request)
        except VoxError as exc:
            await self.shapes.response(request, from_vox(exc))(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _check(self, request: Request) -> None:
        check_content_type(request)
        has_key = bool(request.headers.get("authorization") or request.headers.get("x-api-key"))
        foreign = self.cross_site(request)
        unsafe = request.method not in SAFE_METHODS
        with_cookie = self.cookie in request.cookies or request.url.path == SESSION_PATH
        if foreign and unsafe and not has_key and with_cookie:
            raise Forbidden("Cross-site requests with the session cookie are refused.")
        if foreign or not loopback_host(request):
            if not await self._keyless(request):
                return
            if not loopback_host(request):
                raise Forbidden("Without API keys this server answers only loopback host names.")
            navigation = request.headers.get("sec-fetch-mode") == "navigate" and not unsafe
            if not navigation:
                raise Forbidden("Without API keys this server refuses cross-site requests.")

    def cross_site(self, request: Request) -> bool:
        """The request comes from a page of another site (browsers say so; others don't)."""
        origin = request.headers.get("origin")
        if origin and origin.rstrip("/") in self.allowed:
            return False
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site not in ("same-origin", "none")
        if origin is None:
            return False
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return origin.rstrip("/").lower() != own.lower()

    @staticmethod
    async def _keyless(request: Request) -> bool:
        services = getattr(request.app.state, "services", None)
        return services is not None and bool(await services.auth.open_keyless())


def check_content_type(request: Request) -> None:
    """Raises UnsupportedMediaType for a body that is not JSON, multipart or a form (see the
    module docstring)."""
    if request.method in SAFE_METHODS or not has_body(request):
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    if media == "multipart/form-data":
        return
    path = request.url.path
    form_route = path.endswith(FORM_PATHS) or path in FORM_ROUTES
    if media == "application/x-www-form-urlencoded" and form_route:
        return
    raise UnsupportedMediaType(
        f"Content type '{media or 'none'}' is not accepted here: send JSON as 'application/json'"
        " (uploads as multipart/form-data)."
    )


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def loopback_host(request: HTTPConnection) -> bool:
    """The ``Host`` header names this machine (``localhost``, ``127.x``, ``[::1]``)."""
    return loopback_name(request.headers.get("host", ""))


def loopback_name(host: str) -> bool:
    """``host`` (``name[:port]``) names this machine."""
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name.lower() in ("localhost", "localhost.") or name.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
