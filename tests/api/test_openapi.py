"""The OpenAPI document states every body and answer; ``/docs`` works offline and takes a key."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from pydantic import BaseModel

import voxserve.api
from tests.support.live_server import LiveServer


@pytest.fixture
def spec(live_server: LiveServer) -> dict[str, Any]:
    with live_server.client() as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """``node`` with every ``$ref`` into ``components`` replaced by its target (once per ref)."""

    def walk(item: Any, seen: frozenset[str]) -> Any:
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                return (
                    {} if name in seen else walk(spec["components"]["schemas"][name], seen | {name})
                )
            return {k: walk(v, seen) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, seen) for v in item]
        return item

    return walk(node, frozenset())


def answer(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    content: dict[str, Any] = spec["paths"][path][method]["responses"]["200"]["content"]
    return resolve(spec, content)


def has_key(node: Any, keys: tuple[str, ...]) -> bool:
    if isinstance(node, dict):
        return any(k in node for k in keys) or any(has_key(v, keys) for v in node.values())
    if isinstance(node, list):
        return any(has_key(v, keys) for v in node)
    return False


def test_transcriptions_state_the_form_and_every_answer(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    multipart = resolve(spec, body["multipart/form-data"]["schema"])
    assert multipart["properties"]["file"]["format"] == "binary"
    assert "application/x-www-form-urlencoded" in body
    content = answer(spec, "/v1/audio/transcriptions", "post")
    assert {"application/json", "text/event-stream", "text/plain", "text/vtt"} <= content.keys()
    json_schemas = content["application/json"]["schema"]["oneOf"]
    assert any("segments" in s.get("properties", {}) for s in json_schemas)
    events = content["text/event-stream"]["schema"]["oneOf"]
    types = {
        s["properties"]["type"].get("const") or s["properties"]["type"].get("default")
        for s in events
    }
    assert {"transcription.segment", "transcription.done", "transcript.text.done"} <= types


def test_chat_models_voices_and_speech_have_answer_schemas(spec: dict[str, Any]) -> None:
    chat = answer(spec, "/v1/chat/completions", "post")
    assert "choices" in chat["application/json"]["schema"]["properties"]
    assert "oneOf" in chat["text/event-stream"]["schema"]
    models = answer(spec, "/v1/models", "get")["application/json"]["schema"]
    assert "capabilities" in models["properties"]["data"]["items"]["properties"]
    for path, method in [
        ("/v1/audio/voices", "get"),
        ("/v1/audio/voices", "post"),
        ("/v2/audio/voices", "get"),
        ("/v1/audio/voices/{voice_id}", "get"),
        ("/v1/audio/voices/{voice_id}", "patch"),
        ("/v1/audio/voices/{voice_id}", "delete"),
        ("/voices", "get"),
        ("/voices/{voice_id}", "get"),
        ("/api/tts/voices/presets", "get"),
    ]:
        schema = answer(spec, path, method)["application/json"]["schema"]
        assert schema.get("properties"), (path, method)
    speech = answer(spec, "/v1/audio/speech", "post")
    assert {"application/json", "text/event-stream", "audio/mpeg", "audio/wav"} <= speech.keys()
    assert answer(spec, "/v1/audio/voices/{voice_id}/sample", "get")["audio/wav"]["schema"]


def test_every_endpoint_has_an_example(spec: dict[str, Any]) -> None:
    missing = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not has_key(resolve(spec, operation), ("example", "examples")):
                missing.append(f"{method.upper()} {path}")
            body = operation.get("requestBody")
            if body and not has_key(resolve(spec, body), ("example", "examples")):
                missing.append(f"{method.upper()} {path} (request body)")
    assert not missing


def test_attribute_docstrings_reach_the_document(spec: dict[str, Any]) -> None:
    voice = spec["components"]["schemas"]["VoiceResponse"]["properties"]
    assert "ISO-8601" in voice["created_at"]["description"]
    assert (
        "maps to" in voice["maps_to"]["description"]
        or "resolves to" in voice["maps_to"]["description"]
    )
    speech = spec["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]
    formats = [s["properties"]["response_format"]["description"] for s in speech["schema"]["oneOf"]]
    assert any("float32" in d and "24 kHz" in d for d in formats)
    assert any("16-bit" in d and "24 kHz" in d for d in formats)


def wire_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    root = Path(voxserve.api.__file__).parent
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(["voxserve.api", *(p for p in parts if p != "__init__")])
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__.startswith("voxserve.api"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_wire_model_documents_its_attributes() -> None:
    models = wire_models()
    assert len(models) > 40
    bad = [m.__qualname__ for m in models if not m.model_config.get("use_attribute_docstrings")]
    assert not bad


def test_security_schemes_take_an_api_key(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {
        **schemes["apiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    speech = spec["paths"]["/v1/audio/speech"]["post"]
    assert {"bearer": []} in speech["security"] and {"apiKey": []} in speech["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_docs_page_uses_only_its_own_assets(live_server: LiveServer) -> None:
    with live_server.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        found = [a or b for a, b in urls]
        assert any(u.endswith("swagger-ui-bundle.js") for u in found)
        assert any(u.endswith("swagger-ui.css") for u in found)
        for url in found:
            absolute = urljoin(live_server.url + "/docs", url)
            assert urlsplit(absolute).netloc == urlsplit(live_server.url).netloc, url
            assert client.get(absolute).status_code == 200, url
        assert "cdn" not in page.text.lower()


def test_root_is_the_web_app(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/", follow_redirects=False)
        assert response.status_code == 200
        assert "/web/static/js/app.js" in response.text


def test_errors_are_stated_in_each_shapes_envelope(spec: dict[str, Any]) -> None:
    def error_schema(path: str, method: str) -> dict[str, Any]:
        responses = spec["paths"][path][method]["responses"]
        assert "422" not in responses  # FastAPI's own 422 shape is not what any shape answers
        schema: dict[str, Any] = resolve(spec, responses["4XX"]["content"]["application/json"])[
            "schema"
        ]
        return schema

    shared = error_schema("/v1/audio/speech", "post")["oneOf"]
    assert {"object", "raw_status_code"} <= shared[0]["properties"].keys()
    assert shared[1]["properties"].keys() == {"error"}
    assert "raw_status_code" in error_schema("/v1/audio/voices", "get")["properties"]
    assert "error" in error_schema("/v1/audio/translations", "post")["properties"]
    assert error_schema("/api/tts/generate", "post")["properties"]["code"]["type"] == "integer"
    assert "data" in error_schema("/voices", "post")["properties"]
    assert "HTTPValidationError" not in spec["components"].get("schemas", {})
