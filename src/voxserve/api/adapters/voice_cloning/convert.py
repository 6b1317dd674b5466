"""Cloning API wire models <-> core voice types, and the WAV/MP3/M4A rule for samples."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import PurePosixPath
from typing import BinaryIO, Literal
from urllib.parse import unquote, urlsplit

from voxserve.api.adapters.voice_cloning.protocol import CloningDeletedVoice, CloningVoice
from voxserve.core.ids import iso
from voxserve.core.voice_types import VoiceDraft, VoiceView
from voxserve.errors import InvalidRequest

SampleFormat = Literal["wav", "mp3", "m4a"]
DEFAULT_NAME = "Cloned voice"
MAX_NAME = 200
_PIECE = 64 * 1024


def voice_data(view: VoiceView) -> CloningVoice:
    return CloningVoice(
        voice_id=view.id,
        display_name=view.name,
        voice_type="custom" if view.type == "custom" else "built-in",
        language=view.languages[0] if view.languages else None,
        languages=list(view.languages),
        gender=view.gender,
        description=view.description,
        labels=list(view.tags or ()),
        duration=view.sample_seconds,
        create_time=iso(view.created_at),
    )


def deleted_voice(view: VoiceView, deleted_at: datetime) -> CloningDeletedVoice:
    return CloningDeletedVoice(voice_id=view.id, delete_time=iso(deleted_at))


def sample_format(data: bytes | BinaryIO) -> SampleFormat | None:
    """WAV, MP3 or M4A by the file's signature (never its name); None for anything else.

    An open file is read from its start, a few bytes only (past an MP3's ID3 tag, a piece at a
    time), and left at its start; blocking then: run it in a thread.
    """
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    source.seek(0)
    try:
        head = source.read(12)
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return "wav"
        if head[4:8] == b"ftyp":  # ISO base media (MP4/M4A); the decoder then proves it is audio
            return "m4a"
        return "mp3" if _is_mp3_frame(_first_frame_header(source, head)) else None
    finally:
        source.seek(0)


def _first_frame_header(source: BinaryIO, head: bytes) -> bytes:
    """The two bytes where an MP3's first frame would start: after an ID3 tag and its padding."""
    if head[:3] != b"ID3" or len(head) < 10:
        return head[:2]
    size = 0
    for byte in head[6:10]:  # a "syncsafe" integer: 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    source.seek(10 + size + (10 if head[5] & 0x10 else 0))
    while piece := source.read(_PIECE):  # padding after the tag
        rest = piece.lstrip(b"\0")
        if rest:
            return rest[:2] if len(rest) >= 2 else rest + source.read(1)
    return b""


def _is_mp3_frame(header: bytes) -> bool:
    if len(header) < 2 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version, layer = (header[1] >> 3) & 0x3, (header[1] >> 1) & 0x3
    return version != 0b01 and layer == 0b01  # MPEG 1/2/2.5 Layer III (not ADTS AAC: layer 0)


def check_sample_format(data: bytes | BinaryIO, field: str) -> SampleFormat:
    """Raises InvalidRequest (400): not a WAV, MP3 or M4A file."""
    found = sample_format(data)
    if found is None:
        raise InvalidRequest(
            f"{field}: unsupported file type; only WAV, MP3 and M4A audio is accepted.",
            field=field,
        )
    return found


def default_name(filename: str | None) -> str:
    stem = PurePosixPath(filename or "").stem.strip()
    return stem[:MAX_NAME] or DEFAULT_NAME


def url_filename(url: str) -> str | None:
    return PurePosixPath(unquote(urlsplit(url).path)).name or None


def voice_draft(
    sample: bytes | BinaryIO,
    *,
    filename: str | None,
    display_name: str | None,
    denoise: bool,
    language: str | None,
) -> VoiceDraft:
    return VoiceDraft(
        name=(display_name or "").strip() or default_name(filename),
        sample=sample,
        sample_filename=filename,
        languages=(language,) if language else (),
        denoise=denoise,
    )
