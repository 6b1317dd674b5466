"""Wire shapes, and the thin dispatcher of the routes that several of them share.

A wire shape (``mistral``, ``openai``, ``tts_gateway``, ``voice_cloning``) is one object, built by
its adapter, that renders the shape's error envelope (``render_error``) and the event that ends a
failed stream (``error_event``). The error handlers render every error with the shape of its
request: the one a shared route chose (``request.state.shape``), else the one whose path prefix
matches, else the default (Mistral's: ``/v1`` is Mistral's API first).

The shared routes (``POST /v1/audio/speech``, ``/v1/audio/transcriptions``,
``/v1/chat/completions``) choose the shape ONCE per request: from an explicit
``X-Voxserve-Shape: mistral|openai`` header (for clients such as curl whose bodies are
ambiguous; any other value is a 400), else from the body (see ``speech_shape``,
``transcription_shape``, ``chat_shape``), else, for a body both could send, from the official
SDK that sent it (``sdk_shape``), else Mistral's; then they hand the request to that shape (the
object, kept on ``request.state.shape`` for the error handler). Chat answers are
one format both SDKs read (``api.chat_completions``), so a shape only converts the chat body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from voxserve.api import chat_completions
from voxserve.api.bodies import inline_schema, json_body
from voxserve.api.deps import ChatDep, CurrentOwner, SpeechDep, TranscriptionDep
from voxserve.api.forms import FORM_REQUEST_BODY, TranscriptionForm, read_transcription_form
from voxserve.core.chat import ChatCompletionRequest
from voxserve.core.speech import SpeechService
from voxserve.core.transcription import TranscriptionService
from voxserve.errors import InvalidRequest, VoxError

SHAPE_HEADER = "X-Voxserve-Shape"
B = TypeVar("B")


@dataclass(frozen=True)
class ErrorInfo:
    """An error reduced to what every envelope needs."""

    status: int
    code: str
    message: str
    param: str | None = None
    details: Sequence[dict[str, Any]] = ()
    """Validation problems in FastAPI's ``detail`` list shape."""
    retry_after: int | None = None


class WireShape(Protocol):
    """One API shape's rendering of errors."""

    @property
    def name(self) -> str:
        """``mistral``, ``openai``, ``tts_gateway`` or ``voice_cloning``."""
        ...

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The paths (and everything under them) that belong to this shape alone."""
        ...

    @property
    def error_model(self) -> type[BaseModel]:
        """The envelope as a wire model (for ``/openapi.json``)."""
        ...

    def render_error(self, err: ErrorInfo) -> dict[str, Any]:
        """The JSON body of an error response, in this shape's envelope."""
        ...

    def error_event(self, exc: VoxError) -> bytes:
        """The SSE event that ends a stream which failed after its first event."""
        ...


@dataclass(frozen=True)
class SharedDocs:
    """What a shape adds to the OpenAPI document of the shared routes."""

    speech_request: type[Any]
    speech_responses: Mapping[str, dict[str, Any]]
    """Content type -> schema of the speech answers (JSON, audio, SSE events)."""
    transcription_responses: Mapping[str, dict[str, Any]]
    chat_request: type[Any]


class SharedShape(WireShape, Protocol):
    """A shape that serves the shared ``/v1`` routes (Mistral's and OpenAI's)."""

    @property
    def docs(self) -> SharedDocs:
        """Its request bodies and answers, for ``/openapi.json``."""
        ...

    async def create_speech(
        self, body: dict[str, Any], owner_id: str, speech: SpeechService
    ) -> Response:
        """Validate the JSON body as this shape's, speak it, answer in this shape.

        Raises:
            RequestValidationError: the body is not this shape's speech body.
            VoxError: what ``SpeechService`` raises before the first audio.
        """
        ...

    async def create_transcription(
        self, form: TranscriptionForm, owner_id: str, service: TranscriptionService
    ) -> Response:
        """Transcribe the form's audio, answer in this shape (JSON, text or SSE).

        Raises:
            VoxError: a bad field, or what ``TranscriptionService`` raises before the first event.
        """
        ...

    def chat_request(
        self, body: dict[str, Any], owner_id: str
    ) -> tuple[ChatCompletionRequest, bool]:
        """The core request of a chat body, and whether it asks for a stream.

        Raises:
            RequestValidationError: the body is not this shape's chat body.
            Unsupported: what the engines cannot do (tools, several choices...).
        """
        ...


@dataclass
class ShapeRegistry:
    """Every shape of the app; ``default`` renders what no prefix and no route claims."""

    shared: Mapping[str, SharedShape]
    prefixed: Sequence[WireShape] = ()
    default: str = "mistral"
    _by_prefix: dict[str, WireShape] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for shape in [*self.shared.values(), *self.prefixed]:
            self._by_prefix.update(dict.fromkeys(shape.prefixes, shape))

    def for_path(self, path: str) -> WireShape:
        """The shape whose longest prefix matches ``path``, else the default."""
        matches = [p for p in self._by_prefix if path == p or path.startswith(p.rstrip("/") + "/")]
        if matches:
            return self._by_prefix[max(matches, key=len)]
        return self.shared[self.default]

    @property
    def default_shape(self) -> SharedShape:
        return self.shared[self.default]

    def for_request(self, request: Request) -> WireShape:
        chosen = getattr(request.state, "shape", None)
        return chosen if chosen is not None else self.for_path(request.url.path)

    def response(self, request: Request, err: ErrorInfo) -> JSONResponse:
        """The error response in the request's shape (``Retry-After`` when known)."""
        headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
        body = self.for_request(request).render_error(err)
        return JSONResponse(body, status_code=err.status, headers=headers)

    def from_header(self, request: Request) -> SharedShape | None:
        """The shape an ``X-Voxserve-Shape`` header names, or None without the header.

        Raises:
            InvalidRequest: the header names no shared shape.
        """
        value = request.headers.get(SHAPE_HEADER)
        if value is None:
            return None
        shape = self.shared.get(value.strip().lower())
        if shape is None:
            names = ", ".join(self.shared)
            raise InvalidRequest(
                f"{SHAPE_HEADER}: '{value}' is not one of {names}.", field=SHAPE_HEADER
            )
        return shape

    async def choose(
        self,
        request: Request,
        read: Callable[[Request], Awaitable[B]],
        detect: Callable[[B], str | None],
    ) -> tuple[SharedShape, B]:
        """The request's shape, stored on ``request.state.shape`` for the error handler, and the
        body ``read`` reads. The shape is the header's, else the one ``detect`` sees in the body,
        else (a body both shapes could send) the one of the official SDK that sent it, else the
        default."""
        explicit = self.from_header(request)
        request.state.shape = explicit  # errors while reading render in it already
        body = await read(request)
        name = detect(body) or sdk_shape(request.headers.get("user-agent", ""))
        shape = explicit or self.shared[name or self.default]
        request.state.shape = shape
        return shape, body


def sdk_shape(user_agent: str) -> str | None:
    """``openai`` for the OpenAI SDKs (``OpenAI/Python 1.x``, ``AsyncOpenAI/Python``...)."""
    product = user_agent.split("/", 1)[0]
    return "openai" if "/" in user_agent and product.endswith("OpenAI") else None


def speech_shape(body: dict[str, Any]) -> str | None:
    """A body with ``voice`` is OpenAI's (raw audio or OpenAI SSE), any other Mistral's."""
    return "openai" if "voice" in body else "mistral"


def transcription_shape(form: TranscriptionForm) -> str | None:
    """A form with OpenAI's signs (``response_format``, ``prompt``, ``x[]`` names, a bare
    stream request) is OpenAI's; the others could be either's."""
    return "openai" if form.openai_style else None


OPENAI_CHAT_KEYS = frozenset(
    {
        "max_completion_tokens",
        "stream_options",
        "modalities",
        "audio",
        "store",
        "seed",
        "user",
        "logit_bias",
        "verbosity",
        "web_search_options",
    }
)
"""Keys of OpenAI's chat body that Mistral's (SDK 3.7.0) does not have."""


def chat_shape(body: dict[str, Any]) -> str | None:
    """OpenAI's body: an ``input_audio`` object, a ``developer`` message or an OpenAI-only key;
    the others could be either's."""
    if OPENAI_CHAT_KEYS & body.keys():
        return "openai"
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "developer":
            return "openai"
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("input_audio"), dict):
                return "openai"
    return None


SHAPE_PARAMETER = {
    "name": SHAPE_HEADER,
    "in": "header",
    "required": False,
    "description": "Pick the API shape explicitly (``mistral`` or ``openai``) instead of "
    "letting the body decide; any other value is a 400.",
    "schema": {"type": "string", "enum": ["mistral", "openai"]},
}


def error_responses(*shapes: WireShape) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``4XX``/``5XX`` answers in the envelopes of ``shapes`` (for ``include_router``;
    they replace FastAPI's own 422 schema, which none of the shapes answers)."""
    schemas = [inline_schema(shape.error_model) for shape in shapes]
    schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
    names = " or ".join(shape.name for shape in shapes)
    answer = {"content": {"application/json": {"schema": schema}}}
    return {
        "4XX": {"description": f"A refused request ({names} envelope)", **answer},
        "5XX": {"description": f"A server-side failure ({names} envelope)", **answer},
    }


def shared_router(shapes: ShapeRegistry) -> APIRouter:
    """The routes shared by the Mistral and OpenAI shapes, documented from the shapes' models."""
    router = APIRouter(responses=error_responses(*shapes.shared.values()))
    docs = [s.docs for s in shapes.shared.values()]

    @router.post(
        "/v1/audio/speech",
        tags=["speech"],
        response_model=None,
        openapi_extra=openapi(
            json_request([d.speech_request for d in docs]),
            merged_content([d.speech_responses for d in docs]),
        ),
    )
    async def create_speech(request: Request, owner: CurrentOwner, speech: SpeechDep) -> Response:
        """Generate speech. Mistral body (``voice_id``/``ref_audio``): ``{"audio_data"}`` or SSE.
        OpenAI body (``voice``): audio bytes or SSE (``stream_format``)."""
        shape, body = await shapes.choose(request, json_body, speech_shape)
        return await shape.create_speech(body, owner.id, speech)

    @router.post(
        "/v1/audio/transcriptions",
        tags=["transcription"],
        response_model=None,
        openapi_extra=openapi(
            FORM_REQUEST_BODY, merged_content([d.transcription_responses for d in docs])
        ),
    )
    async def create_transcription(
        request: Request, owner: CurrentOwner, service: TranscriptionDep
    ) -> Response:
        """Transcribe an uploaded ``file``, a ``file_url`` or a ``file_id``.

        Mistral's answer is JSON (model, text, language, segments, usage) or SSE events;
        OpenAI's follows ``response_format`` (json, text, srt, vtt, verbose_json) or streams
        ``transcript.text.*`` events."""
        shape, form = await shapes.choose(request, read_transcription_form, transcription_shape)
        return await shape.create_transcription(form, owner.id, service)

    @router.post(
        "/v1/chat/completions",
        tags=["chat"],
        response_model=None,
        openapi_extra=openapi(
            json_request([d.chat_request for d in docs]), chat_completions.RESPONSE_CONTENT
        ),
    )
    async def create_chat_completion(
        request: Request, owner: CurrentOwner, chat: ChatDep
    ) -> Response:
        """Answer a conversation whose messages may hold audio (``input_audio`` parts):
        ``chat.completion`` JSON, or with ``"stream": true`` SSE chunks ending ``[DONE]``."""
        shape, body = await shapes.choose(request, json_body, chat_shape)
        core, stream = shape.chat_request(body, owner.id)
        return await chat_completions.respond(chat, core, stream=stream)

    return router


def json_request(models: Sequence[type[Any]]) -> dict[str, Any]:
    schema = {"oneOf": [inline_schema(m) for m in models]}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def merged_content(contents: Sequence[Mapping[str, dict[str, Any]]]) -> dict[str, Any]:
    """Content types of several shapes' answers; two schemas for one type become a ``oneOf``."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for content in contents:
        for media_type, schema in content.items():
            merged.setdefault(media_type, []).extend(schema.get("oneOf", [schema]))
    return {
        media_type: {"schema": schemas[0] if len(schemas) == 1 else {"oneOf": schemas}}
        for media_type, schemas in merged.items()
    }


def openapi(request_body: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": request_body,
        "parameters": [SHAPE_PARAMETER],
        "responses": {"200": {"description": "Successful Response", "content": content}},
    }
