"""The ``/voices`` cloning API (seed 003): list, clone (upload or URL), get, soft delete.

A thin adapter over ``VoiceService``: a voice cloned here is the same voice in every other shape,
and a soft-deleted one disappears from all of them at once. Errors render through
``errors.render``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, File, Form, Query, UploadFile

from voxserve.api.adapters.voice_cloning.convert import (
    check_sample_format,
    deleted_voice,
    url_filename,
    voice_data,
    voice_draft,
)
from voxserve.api.adapters.voice_cloning.errors import error_event, render_error
from voxserve.api.adapters.voice_cloning.protocol import (
    CloningDeletedVoice,
    CloningError,
    CloningReply,
    CloningVoice,
    CloningVoiceList,
    CloningVoiceType,
)
from voxserve.api.deps import CurrentOwner, UrlFetchDep, VoiceServiceDep
from voxserve.api.shapes import ErrorInfo
from voxserve.api.wire import MAX_PAGE, CleanText, check_text
from voxserve.core.fetching import Fetched
from voxserve.core.ids import utcnow
from voxserve.core.types import VoiceQuery
from voxserve.core.voice_types import VoiceType
from voxserve.errors import InvalidRequest, VoxError
from voxserve.offload import run_in_thread

PREFIX = "/voices"
router = APIRouter(prefix=PREFIX, tags=["voice cloning"])


class VoiceCloningShape:
    """The cloning API's envelope for everything under ``/voices``."""

    name = "voice_cloning"
    prefixes = (PREFIX,)
    error_model = CloningError

    def render_error(self, err: ErrorInfo) -> dict[str, Any]:
        return render_error(err)

    def error_event(self, exc: VoxError) -> bytes:
        return error_event(exc)


SHAPE = VoiceCloningShape()


@router.get("", response_model=CloningReply[CloningVoiceList])
async def list_voices(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    voice_type: CloningVoiceType = "custom",
    keyword: str | None = None,
    skip: Annotated[int, Query(ge=0, le=MAX_PAGE, description="Page number, from 0.")] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> CloningReply[CloningVoiceList]:
    """The owner's voices (``custom``, from every API shape) or the ``built-in`` presets;
    ``keyword`` searches names, descriptions and tags."""
    query = VoiceQuery(text=keyword or None, text_in_details=True)
    kind: VoiceType = "custom" if voice_type == "custom" else "preset"
    items, total = await voices.list(
        owner.id, type=kind, query=query, offset=skip * limit, limit=limit
    )
    page = CloningVoiceList(
        voices=[voice_data(v) for v in items], total=total, skip=skip, limit=limit
    )
    return CloningReply(data=page)


@router.post("", response_model=CloningReply[CloningVoice])
async def clone_voice(
    owner: CurrentOwner,
    voices: VoiceServiceDep,
    fetch: UrlFetchDep,
    file: Annotated[UploadFile | None, File(description="WAV, MP3 or M4A sample.")] = None,
    voice_url: Annotated[
        CleanText | None,
        Form(
            description="URL of a WAV, MP3 or M4A sample.",
            examples=["https://example.com/sample.wav"],
        ),
    ] = None,
    display_name: Annotated[CleanText | None, Form(max_length=200, examples=["My voice"])] = None,
    denoise: Annotated[bool, Form(description="Reduce background noise first.")] = False,
    language: Annotated[str | None, Form(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z]{2,4})?$")] = None,
) -> CloningReply[CloningVoice]:
    """Clone a voice from an uploaded ``file`` or a ``voice_url`` (exactly one)."""
    sample, filename = await read_sample(fetch, file, voice_url)
    with sample:  # a fetched body's spool goes at once (the upload's is Starlette's anyway)
        field = "file" if file is not None else "voice_url"
        await run_in_thread(check_sample_format, sample, field)
        draft = voice_draft(
            sample, filename=filename, display_name=display_name, denoise=denoise, language=language
        )
        return CloningReply(data=voice_data(await voices.create(owner.id, draft)))


async def read_sample(
    fetch: Callable[..., Awaitable[Fetched]], file: UploadFile | None, voice_url: str | None
) -> tuple[BinaryIO, str | None]:
    """The sample as a file to decode from (never whole in memory), and its name: the upload
    as Starlette spooled it, or the ``voice_url`` fetched as safely as ``file_url``."""
    url = (voice_url or "").strip()
    if (file is None) == (not url):
        raise InvalidRequest("Give either file or voice_url (exactly one).", field="file")
    if file is not None:
        return file.file, check_text(file.filename or "", "file") or None
    return (await fetch(url, field="voice_url")).body, url_filename(url)


@router.get("/{voice_id}", response_model=CloningReply[CloningVoice])
async def get_voice(
    voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep
) -> CloningReply[CloningVoice]:
    """A custom or built-in voice."""
    return CloningReply(data=voice_data(await voices.get(owner.id, voice_id)))


@router.delete("/{voice_id}", response_model=CloningReply[CloningDeletedVoice])
async def delete_voice(
    voice_id: str, owner: CurrentOwner, voices: VoiceServiceDep
) -> CloningReply[CloningDeletedVoice]:
    """Soft delete: the voice disappears from every list and lookup now; its sample is purged
    after ``retention.deleted_voice_days`` by the server's cleanup."""
    view = await voices.delete(owner.id, voice_id, soft=True)
    return CloningReply(data=deleted_voice(view, utcnow()))
