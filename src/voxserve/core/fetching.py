"""What core needs from a URL fetcher: the protocol and the file it hands back, and the
spooling helpers that core and the fetcher share (a body written to a temporary file in pieces).

The implementation (TLS, DNS pinning, address rules, redirects) is network infrastructure and
lives outside core, in ``voxserve.net.fetch``; the composition root passes it in. Tests may pass
anything with this ``fetch`` method.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

from voxserve.offload import run_in_thread

SPOOL_IN_MEMORY = 1024 * 1024
"""Spooled bodies up to this size stay in memory; larger ones go to a temporary file (as
Starlette spools uploads). Also the size of each write to a spool and of each read from a file."""


@dataclass(frozen=True)
class Fetched:
    """A downloaded file (or a stored one, ``FileService.open``), spooled: decode it from
    ``body``, never from a copy in memory.

    The caller owns ``body`` and closes it when done (``close``); a temporary file is removed
    when closed, or by the system if the process dies, so nothing is left behind on disk.
    """

    body: BinaryIO
    """The bytes in a temporary file (on disk past a small size), positioned at the start."""
    size: int
    """Bytes in ``body``."""
    content_type: str | None
    """The media type without parameters, lower-cased (``audio/wav``), or None when not sent."""
    url: str
    """The final URL, after redirects."""
    filename: str | None
    """From ``Content-Disposition``, else the last segment of the URL path; no directories."""

    def read(self) -> bytes:
        """The whole body in memory, for callers that keep small files whole (a voice sample);
        ``size`` is bounded by the fetcher's ``max_bytes``."""
        self.body.seek(0)
        data = self.body.read()
        self.body.seek(0)
        return data

    def close(self) -> None:
        self.body.close()


def new_spool() -> BinaryIO:
    """An empty spool: in memory while small, then an anonymous temporary file that the system
    removes when it is closed, also when the process is killed (the standard library's
    ``SpooledTemporaryFile``)."""
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY))


async def spool_chunks(chunks: AsyncIterable[bytes], body: BinaryIO, limit: int) -> int:
    """Write ``chunks`` to ``body`` in pieces of about ``SPOOL_IN_MEMORY`` (each write off the
    loop), stopping past ``limit``; returns the bytes written, or more than ``limit`` (then
    ``body`` holds a part only). ``body`` is left at its start."""
    size, pending = 0, bytearray()
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return size
        pending += chunk
        if len(pending) >= SPOOL_IN_MEMORY:
            await run_in_thread(body.write, bytes(pending))
            pending.clear()
    if pending:
        await run_in_thread(body.write, bytes(pending))
    await run_in_thread(body.seek, 0)
    return size


async def file_chunks(source: BinaryIO, piece: int = SPOOL_IN_MEMORY) -> AsyncIterator[bytes]:
    """``source`` from its start in pieces of ``piece`` bytes, each read off the loop."""
    await run_in_thread(source.seek, 0)
    while chunk := await run_in_thread(source.read, piece):
        yield chunk


class UrlFetcher(Protocol):
    """Downloads a URL a client sent (``file_url``, ``voice_url``, chat ``input_audio``)."""

    async def fetch(self, url: str, *, field: str = "file_url") -> Fetched:
        """Download ``url``.

        Args:
            url: the URL the client sent.
            field: the request field it came from; names it in errors.

        Returns:
            The body spooled to a temporary file, its media type, the final URL and a file
            name when one is known.

        Raises:
            InvalidRequest: the URL was refused (a safety rule, a non-2xx answer, too large,
                timed out, the connection failed); the message starts with ``field``.
        """
        ...
