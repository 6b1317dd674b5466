"""Base64 payloads: decoded from clients (plain or ``data:`` URLs), encoded for answers."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import TypeVar

from voxserve.errors import ValidationFailed
from voxserve.offload import run_in_thread

T = TypeVar("T")
OFF_LOOP_CHARS = 256 * 1024
"""Base64 at least this long is decoded in a worker thread (a 9 MB sample takes ~50 ms)."""


def decode_base64(value: str, field: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding or a ``data:...;base64,``
    prefix.

    Raises:
        ValidationFailed: not base64, or empty.
    """
    return b"".join(iter_base64(value, field))


async def decode_base64_off_loop(value: str, field: str) -> bytes:
    """``decode_base64``, in a worker thread when ``value`` is long."""
    return await converted(lambda: decode_base64(value, field), value)


async def converted(convert: Callable[[], T], *base64_values: str | None) -> T:
    """``convert()``, which decodes ``base64_values`` among other things: in a worker thread
    when they are long together, else here."""
    if sum(len(v) for v in base64_values if v) < OFF_LOOP_CHARS:
        return convert()
    return await run_in_thread(convert)


def iter_base64(value: str, field: str) -> Iterator[bytes]:
    """``decode_base64`` in pieces of about ``PIECE`` characters' worth, for writing a large
    value to a file without its decoded bytes whole in memory.

    Raises:
        ValidationFailed: not base64, or empty (possibly after some pieces).
    """
    text = value.strip()
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    text = "".join(text.split())
    if not text:
        raise ValidationFailed(f"{field}: the value is empty.", field=field)
    text += "=" * (-len(text) % 4)
    padding = text.find("=")
    try:
        if padding != -1 and padding < len(text) - 2:
            raise ValueError("padding inside the value")
        decode = _urlsafe if "-" in text or "_" in text else _standard
        # In pieces: each is one C call that holds the GIL, so a worker thread decoding a
        # 10 MB sample lets the event loop run between pieces (#14 item 5).
        for at in range(0, len(text), PIECE):
            yield decode(text[at : at + PIECE])
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"{field}: the value is not valid base64.", field=field) from None


PIECE = 256 * 1024
"""Characters decoded per call (a multiple of 4: pieces decode exactly as the whole would)."""


def _standard(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _urlsafe(text: str) -> bytes:
    return base64.urlsafe_b64decode(text)


def encode_base64(data: bytes) -> str:
    """Standard base64 with padding, as text (audio in JSON answers and SSE events)."""
    return base64.b64encode(data).decode()
