"""A test double of a model hub's file endpoint, on loopback, for ``voxserve.models.pull``.

It is a real HTTP server (127.0.0.1, a free port, a background thread) serving files put into it
at ``/{repo}/resolve/{revision}/{path}``, so ``pull`` runs through its actual httpx code. Like the
real hub it can answer ``Range`` requests (206, or 416 past the end), send the sha256 of a file as
``X-Linked-Etag``, redirect to a "CDN" path that carries the headers on the redirect only, ask for
a token, and drop a connection half-way through a body (once per file, when told to). Every
request is recorded.

    with HubDouble() as hub:
        hub.add("org/model", "main", "model.bin", data, linked_etag=True)
        await pull(entry, models_dir, hub_url=hub.url)
        assert hub.requests[-1].headers.get("range") is None
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class HostedFile:
    data: bytes
    linked_etag: bool = False
    """Send ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size`` like the hub does for LFS files."""
    drop_after: int | None = None
    """Close the connection after this many body bytes, once (the next request is served)."""
    token: str | None = None
    """Answer 401 unless ``Authorization: Bearer <token>`` is sent."""
    claimed_sha256: str | None = None
    """Send this in ``X-Linked-Etag`` instead of the true sha256 (a hub that lies)."""
    ranges: bool = True
    """Honour ``Range``; False answers every request with the whole file (200)."""


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    status: int


class HubDouble:
    """The double; a context manager. ``redirect=True`` answers ``/resolve/`` with a 302."""

    def __init__(self, *, redirect: bool = False) -> None:
        self.redirect = redirect
        self.files: dict[str, HostedFile] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, repo: str, revision: str, path: str, data: bytes, **options: Any) -> HostedFile:
        hosted = HostedFile(data, **options)
        self.files[f"/{repo}/resolve/{revision}/{path}"] = hosted
        return hosted

    def requests_for(self, path: str) -> list[Recorded]:
        """The requests whose path ends with ``path`` (a file name or path in the repo)."""
        return [r for r in self.requests if r.path.endswith(path)]

    def __enter__(self) -> HubDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(handler.command, unquote(handler.path), headers, status))


def _handler_for(hub: HubDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            path = unquote(self.path)
            cdn = path.startswith("/cdn/")
            hosted = hub.files.get(path.removeprefix("/cdn"))
            if hosted is None:
                return self._empty(404)
            if hosted.token and self.headers.get("authorization") != f"Bearer {hosted.token}":
                return self._empty(401)
            if hub.redirect and not cdn:
                return self._redirect(path, hosted)
            self._serve(hosted, linked=hosted.linked_etag and not hub.redirect)

        def _redirect(self, path: str, hosted: HostedFile) -> None:
            hub.record(self, 302)
            self.send_response(302)
            self.send_header("Location", "/cdn" + path)
            self._linked_headers(hosted)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, hosted: HostedFile, *, linked: bool) -> None:
            data, start = hosted.data, 0
            match = _RANGE.fullmatch(self.headers.get("range", "")) if hosted.ranges else None
            if match is not None:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return hub.record(self, 416)
            status = 206 if match is not None else 200
            hub.record(self, status)
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if linked:
                self._linked_headers(hosted)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self._body(hosted, data[start:])

        def _body(self, hosted: HostedFile, body: bytes) -> None:
            if hosted.drop_after is None:
                self.wfile.write(body)
                return
            self.wfile.write(body[: hosted.drop_after])
            self.wfile.flush()
            hosted.drop_after = None
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def _linked_headers(self, hosted: HostedFile) -> None:
            if hosted.linked_etag:
                sha = hosted.claimed_sha256 or hashlib.sha256(hosted.data).hexdigest()
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(hosted.data)))

        def _empty(self, status: int) -> None:
            hub.record(self, status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
