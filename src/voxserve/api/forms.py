"""Transcription form bodies: multipart or urlencoded (the Mistral SDK sends the latter for
``file_url``/``file_id``), with repeated fields in either spelling (``x`` or ``x[]``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile

from voxserve.api.bodies import inline_schema
from voxserve.api.wire import check_text
from voxserve.errors import InvalidRequest, ValidationFailed

MAX_FIELD_BYTES = 1024 * 1024
"""Largest text field (Starlette's default part size), but for the reference fields."""
MAX_REFERENCE_FIELD_BYTES = 32 * 1024 * 1024
"""Largest reference field: Mistral's ``speaker_references`` JSON part holds up to 8 base64
clips of 15 s (about 2 MB each at 48 kHz); the body limit still holds. Starlette stops any
multipart text part past this while parsing (400); ``check_field_sizes`` then holds every other
field to ``MAX_FIELD_BYTES``."""
REFERENCE_FIELDS = frozenset({"speaker_references", "known_speaker_references"})
"""The fields that carry audio clips as text (base64, data URLs)."""
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class TranscriptionForm:
    model: str | None
    file: BinaryIO | None
    """The uploaded audio as Starlette spooled it (on disk past 1 MB): decoded from the file,
    never read into memory whole (#14 item 8)."""
    file_url: str | None
    file_id: str | None
    language: str | None
    temperature: float | None
    stream: bool
    diarize: bool
    context_bias: tuple[str, ...]
    timestamp_granularities: tuple[str, ...]
    response_format: str | None
    prompt: str | None
    openai_style: bool
    """Fields only OpenAI clients send (``response_format``, ``prompt``, ``x[]`` names)."""
    speaker_references: dict[str, str] | None = None
    """Mistral: name -> base64 clip, from the JSON part of the form."""
    known_speaker_names: tuple[str, ...] = ()
    """OpenAI: the names of ``known_speaker_references``, in order."""
    known_speaker_references: tuple[str, ...] = ()
    """OpenAI: data URLs of the known speakers' clips."""
    chunking_strategy: str | None = None
    """OpenAI: ``auto`` or ``server_vad`` (long audio is always chunked here)."""


async def read_transcription_form(request: Request) -> TranscriptionForm:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ValidationFailed(
            "The body must be multipart/form-data or application/x-www-form-urlencoded.",
            field="body",
        )
    form = await request.form(max_part_size=MAX_REFERENCE_FIELD_BYTES)
    check_field_sizes(form)
    upload = form.get("file")
    data = None
    if isinstance(upload, UploadFile):
        data = upload.file
    elif isinstance(upload, str) and upload:
        raise ValidationFailed(
            "file: send the audio as a file part, not a text field.", field="file"
        )
    granularities = repeated(form, "timestamp_granularities")
    for value in granularities:
        if value not in ("segment", "word"):
            raise ValidationFailed(
                f"timestamp_granularities: '{value}' is not segment or word.",
                field="timestamp_granularities",
            )
    return TranscriptionForm(
        model=text(form, "model"),
        file=data,
        file_url=text(form, "file_url"),
        file_id=text(form, "file_id"),
        language=text(form, "language"),
        temperature=number(form, "temperature"),
        stream=boolean(form, "stream"),
        diarize=boolean(form, "diarize"),
        context_bias=repeated(form, "context_bias"),
        timestamp_granularities=granularities,
        response_format=text(form, "response_format"),
        prompt=text(form, "prompt"),
        openai_style=openai_style(form),
        speaker_references=json_object(form, "speaker_references"),
        known_speaker_names=repeated(form, "known_speaker_names"),
        known_speaker_references=repeated(form, "known_speaker_references"),
        chunking_strategy=chunking(form),
    )


MISTRAL_ONLY = (
    "diarize",
    "context_bias",
    "file_url",
    "file_id",
    "timestamp_granularities",
    "speaker_references",
)


def openai_style(form: FormData) -> bool:
    """OpenAI clients send ``response_format``/``prompt``/``x[]`` fields; the Mistral SDK always
    sends ``diarize``. A stream request with neither sign gets OpenAI's events."""
    if any(k in form for k in ("response_format", "prompt")) or any(k.endswith("[]") for k in form):
        return True
    return text(form, "stream") in TRUE and not any(k in form for k in MISTRAL_ONLY)


def check_field_sizes(form: FormData) -> None:
    """Hold each text field to its limit: ``MAX_REFERENCE_FIELD_BYTES`` for the reference fields
    (either spelling), ``MAX_FIELD_BYTES`` for the rest.

    Raises:
        InvalidRequest: a field over its limit (400, naming it).
    """
    for name, value in form.multi_items():
        if not isinstance(value, str) or name.removesuffix("[]") in REFERENCE_FIELDS:
            continue  # a file part, or a reference field (Starlette held it to its limit)
        if (
            len(value) > MAX_FIELD_BYTES
            or len(value.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES
        ):
            raise InvalidRequest(
                f"{name}: at most {MAX_FIELD_BYTES // 1024} KiB of text.", field=name
            )


def text(form: FormData, name: str) -> str | None:
    """The field's stripped text (None when absent or blank).

    Raises:
        ValidationFailed: a NUL character or a lone surrogate in it.
    """
    value = form.get(name)
    return check_text(value.strip(), name) or None if isinstance(value, str) else None


def repeated(form: FormData, name: str) -> tuple[str, ...]:
    """Every value of a repeated field (``name`` or ``name[]``), stripped, blanks dropped."""
    values = [*form.getlist(name), *form.getlist(f"{name}[]")]
    return tuple(check_text(v.strip(), name) for v in values if isinstance(v, str) and v.strip())


def json_object(form: FormData, name: str) -> dict[str, str] | None:
    """A JSON part holding an object of strings (Mistral's ``speaker_references``).

    Raises:
        ValidationFailed: not JSON, or not an object of strings.
    """
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValidationFailed(f"{name}: not valid JSON.", field=name) from None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ValidationFailed(f"{name}: must be an object of names to base64 audio.", field=name)
    return parsed


def chunking(form: FormData) -> str | None:
    """OpenAI's ``chunking_strategy``: ``auto``, or an object sent as ``chunking_strategy[type]``
    (only ``server_vad``).

    Raises:
        ValidationFailed: any other value.
    """
    value = text(form, "chunking_strategy") or text(form, "chunking_strategy[type]")
    if value is None:
        return None
    if value not in ("auto", "server_vad"):
        raise ValidationFailed(
            f"chunking_strategy: '{value}' is not auto or server_vad.", field="chunking_strategy"
        )
    return value


def boolean(form: FormData, name: str) -> bool:
    value = (text(form, name) or "").lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValidationFailed(f"{name}: '{value}' is not true or false.", field=name)


def number(form: FormData, name: str) -> float | None:
    value = text(form, name)
    if value is None:
        return None
    try:
        parsed = float(value)
    except ValueError:
        raise ValidationFailed(f"{name}: '{value}' is not a number.", field=name) from None
    if not math.isfinite(parsed):
        raise ValidationFailed(f"{name}: '{value}' is not a finite number.", field=name)
    return parsed


class TranscriptionFormFields(BaseModel):
    """The fields of a transcription form (documentation of the body ``read_transcription_form``
    reads; repeated fields may also be spelt ``name[]``)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    file: bytes | None = Field(None, json_schema_extra={"format": "binary"})
    """The audio file (any container PyAV decodes). Give exactly one of file, file_url, file_id."""
    file_url: str | None = None
    """An http(s) URL of the audio (fetched by the server; private addresses are refused)."""
    file_id: str | None = None
    """The id of a file uploaded to ``/v1/files``."""
    model: str | None = Field(None, examples=["voxtral-mini-latest"])
    """A hosted name (``voxtral-mini-latest``, ``whisper-1``...) or an engine name."""
    language: str | None = Field(None, examples=["en"])
    """ISO-639-1 code; detected when omitted."""
    temperature: float | None = None
    timestamp_granularities: list[Literal["segment", "word"]] = []
    """``word`` adds word timings to the segments."""
    context_bias: list[str] = []
    """Mistral: words and names to favour (hotwords)."""
    diarize: bool = False
    """Mistral: speaker labels in ``segments[].speaker_id`` (refused when no engine can)."""
    speaker_references: dict[str, str] | None = Field(
        None, json_schema_extra={"contentMediaType": "application/json"}
    )
    """Mistral: a JSON part, name -> base64 clip (at most 8, 3-15 s each; needs ``diarize``)."""
    known_speaker_names: list[str] = []
    """OpenAI: names of the ``known_speaker_references`` (at most 4)."""
    known_speaker_references: list[str] = []
    """OpenAI: data URLs (``data:audio/wav;base64,...``) of 2-10 s clips of known speakers."""
    chunking_strategy: Literal["auto"] | None = None
    """OpenAI: accepted (``auto`` or ``server_vad``); long audio is always chunked here."""
    stream: bool = False
    """SSE events instead of one answer."""
    response_format: (
        Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"] | None
    ) = None
    """OpenAI: the answer's format; its presence makes the request OpenAI's."""
    prompt: str | None = None
    """OpenAI: text that guides the style of the transcript."""


def form_request_body(model: type[BaseModel] = TranscriptionFormFields) -> dict[str, Any]:
    """An OpenAPI request body: the form in multipart (with the file part as binary) and
    urlencoded encodings (the Mistral SDK sends the latter for ``file_url``/``file_id``)."""
    schema = inline_schema(model)
    model_name = schema["properties"]["model"].get("examples", ["voxtral-mini-latest"])[0]
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": schema,
            "encoding": {"file": {"contentType": "audio/*"}},
            "example": {"model": model_name, "file": "(binary audio)"},
        }
    }
    if "file_id" in schema["properties"]:  # a source other than the upload: urlencoded works
        content["application/x-www-form-urlencoded"] = {
            "schema": {**schema, "properties": without_file(schema)},
            "example": {"model": model_name, "file_id": "file-abc123"},
        }
    return {"required": True, "content": content}


def without_file(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.get("properties", {}).items() if k != "file"}


FORM_REQUEST_BODY = form_request_body()
