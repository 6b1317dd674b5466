"""Metering is declared where the route is: a route gets the speech, transcription or chat
service only through its metered dependency (``api.deps.metered``), so a route that uses one
cannot go unrecorded; only ``api/deps.py`` (and the composition root, ``api/app.py``) reach
into the service container."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

import voxserve.api
from tests.support.audio_samples import tone_wav
from tests.support.live_server import LiveServer
from voxserve.api.app import create_app
from voxserve.settings import Settings

API = Path(voxserve.api.__file__).parent
METERED_SERVICES = {"speech", "transcription", "chat"}


def metered_as(dependant: Dependant) -> set[str]:
    found = set()
    for sub in dependant.dependencies:
        name = getattr(sub.call, "metered_as", None)
        if name:
            found.add(name)
        found |= metered_as(sub)
    return found


def api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    """The app's routes, also those of included routers (FastAPI >= 0.13x keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def test_the_routes_that_use_metered_services_are_metered(settings: Settings) -> None:
    app = create_app(settings)
    metered = {
        (method, route.path): metered_as(route.dependant)
        for route in api_routes(app.routes)
        for method in route.methods
        if metered_as(route.dependant)
    }
    assert metered == {
        ("POST", "/v1/audio/speech"): {"speech"},
        ("POST", "/api/tts/generate"): {"speech"},
        ("POST", "/api/tts/stream"): {"speech"},
        ("POST", "/v1/audio/transcriptions"): {"transcription"},
        ("POST", "/v1/audio/translations"): {"transcription"},
        ("POST", "/v1/chat/completions"): {"chat"},
    }


def test_only_deps_reaches_into_the_service_container() -> None:
    for path in sorted(API.rglob("*.py")):
        if path.parent == API and path.name in ("deps.py", "app.py"):  # the composition root
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id not in ("get_services", "Services", "ServicesDep"), path
            if isinstance(node, ast.Attribute):
                assert node.attr != "services", f"{path}: .services"


def test_a_refused_translation_and_chat_leave_their_records(live_server: LiveServer) -> None:
    with live_server.client() as client:
        files = {"file": ("a.wav", tone_wav(1.0), "audio/wav")}
        bad = client.post("/v1/audio/translations", files=files, data={"response_format": "xml"})
        assert bad.status_code == 422
        chat = client.post("/v1/chat/completions", json={"messages": []})
        assert chat.status_code == 422
        records = client.get("/v1/usage").json()["records"]
    assert sorted((r["endpoint"], r["status"]) for r in records) == [
        ("chat", 422),
        ("transcription", 422),
    ]
