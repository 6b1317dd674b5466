"""The interactive docs, served offline: ``/docs`` (Swagger UI) with its assets shipped in the
package (``api/static/swagger-ui``, swagger-ui-dist 5.35.0, Apache-2.0), no CDN; ``GET /`` leads
there when the web app is off. The Authorize button takes an API key (Bearer or ``x-api-key``,
the security schemes the owner dependency declares)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static" / "swagger-ui"
ASSETS = "/docs/assets"
router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    """Where a browser lands when the web app is off (``VOXSERVE_WEB__ENABLED=false``; the web
    app, installed first, answers ``/`` otherwise)."""
    return RedirectResponse("/docs")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="voxserve API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def install_docs(app: FastAPI) -> None:
    """Serve the docs page, its assets and the ``/`` redirect (create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages stay off)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")
