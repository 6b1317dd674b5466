"""Big values at the wire (#14 item 5): the text rules and base64 decoding give the same answers
for the fast paths that keep multi-megabyte samples from holding the event loop (an ASCII
string is checked with ``isascii`` and memchr; base64 is decoded in pieces)."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest

from voxserve.api.wire import forbidden_character
from voxserve.core.b64 import (
    OFF_LOOP_CHARS,
    PIECE,
    converted,
    decode_base64,
    decode_base64_off_loop,
)
from voxserve.errors import ValidationFailed


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("plain ascii", None),
        ("ascii with \x00 inside", "a NUL character"),
        ("non-ascii é", None),
        ("non-ascii é \ud800", "a lone surrogate"),
        ("é \x00 then \ud800", "a NUL character"),
        ("A" * 3_000_000 + "\x00", "a NUL character"),
        ("A" * 3_000_000, None),
    ],
)
def test_forbidden_characters_are_found_on_every_path(text: str, found: str | None) -> None:
    assert forbidden_character(text) == found


@pytest.mark.parametrize("size", [1, 2, 3, 100, PIECE * 3 // 4, PIECE * 3 // 4 + 1, 1_000_003])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_in_pieces_decodes_as_a_whole(size: int, encode: object) -> None:
    raw = os.urandom(size)
    text = encode(raw).decode()  # type: ignore[operator]
    assert decode_base64(text, "audio") == raw
    assert decode_base64(text.rstrip("="), "audio") == raw  # padding is optional
    assert decode_base64(f"data:audio/wav;base64,{text}", "audio") == raw


@pytest.mark.parametrize("bad", ["QQ==QQ==", "!!!!", "A" * PIECE + "!AAA"])
def test_bad_base64_is_refused_whatever_its_size(bad: str) -> None:
    with pytest.raises(ValidationFailed, match="not valid base64"):
        decode_base64(bad, "audio")


def _on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_long_base64_is_decoded_off_the_event_loop() -> None:
    short, long = "QUJD", "QUJD" * (OFF_LOOP_CHARS // 4)
    assert await converted(_on_the_loop, short) is True
    assert await converted(_on_the_loop, short, None, short) is True
    assert await converted(_on_the_loop, long) is False
    assert await converted(_on_the_loop, *[long[: OFF_LOOP_CHARS // 2]] * 2) is False  # together
    assert await decode_base64_off_loop(long, "ref_audio") == b"ABC" * (OFF_LOOP_CHARS // 4)
