"""Base64 payloads: decoded from clients (plain or ``data:`` URLs), encoded for answers."""

from __future__ import annotations

import base64
import binascii

from voxserve.errors import ValidationFailed


def decode_base64(value: str, field: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding or a ``data:...;base64,``
    prefix.

    Raises:
        ValidationFailed: not base64, or empty.
    """
    text = value.strip()
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    text = "".join(text.split())
    if not text:
        raise ValidationFailed(f"{field}: the value is empty.", field=field)
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"{field}: the value is not valid base64.", field=field) from None


def encode_base64(data: bytes) -> str:
    """Standard base64 with padding, as text (audio in JSON answers and SSE events)."""
    return base64.b64encode(data).decode()
