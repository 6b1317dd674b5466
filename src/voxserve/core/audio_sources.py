"""Where audio to hear comes from: an upload, a stored file (by id or signed URL), or a URL.

Every source is decoded from a file, never from a copy in memory (#14 item 8): an upload is the
file the web framework spooled; a stored file and a fetched URL are spooled to a temporary file
(``core.fetching.Fetched``), which the caller closes when it is done with the audio. A closed
spool is gone at once (an anonymous temporary file; the system removes it even after kill -9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from voxserve.audio.decode import Source
from voxserve.core.fetching import Fetched, UrlFetcher
from voxserve.core.files import FileService
from voxserve.errors import InvalidRequest


@dataclass(frozen=True)
class OpenedSource:
    """Audio to decode, and the spool this module opened for it (None for the caller's own
    data), which the holder closes when done."""

    data: Source
    spool: BinaryIO | None = None

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


class AudioSources:
    """Opens audio sources as files to decode from.

    Args:
        files: this server's stored files (``file_id`` and signed URLs are read locally).
        fetcher: downloads every other URL, safely.
    """

    def __init__(self, files: FileService, fetcher: UrlFetcher) -> None:
        self._files = files
        self._fetcher = fetcher

    async def open(
        self, owner_id: str, *, data: Source | None, url: str | None, file_id: str | None
    ) -> OpenedSource:
        """Exactly one of ``data`` (returned as it is), ``url`` or ``file_id`` (spooled).

        Raises:
            InvalidRequest: none or several given, a refused URL. NotFound: an unknown file.
        """
        given = [x is not None for x in (data, url, file_id)]
        if sum(given) != 1:
            raise InvalidRequest(
                "Give exactly one of file, file_url or file_id.",
                field="file" if sum(given) == 0 else None,
            )
        if data is not None:
            return OpenedSource(data)
        if file_id is not None:
            fetched = await self._files.open(owner_id, file_id)
        else:
            fetched = await self.open_url(url or "", field="file_url")
        return OpenedSource(fetched.body, fetched.body)

    async def open_url(self, url: str, *, field: str) -> Fetched:
        """The file at ``url``, spooled (the caller closes it): this server's signed file URLs
        are read from storage, other URLs are fetched (``UrlFetcher``'s rules).

        Raises:
            InvalidRequest: a refused URL, naming ``field``. NotFound: a bad signed URL.
        """
        local = await self._files.resolve_signed_url(url)
        if local is not None:
            return local
        return await self._fetcher.fetch(url, field=field)
