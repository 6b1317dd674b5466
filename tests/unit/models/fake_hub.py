"""A fake Hugging Face hub on loopback: the few endpoints ``hf_hub_download`` uses.

It is a real HTTP server (127.0.0.1, a free port, a background thread) serving files put into it
at ``/{repo}/resolve/{revision}/{path}``, so ``voxserve.models.pull`` runs through the real
``huggingface_hub`` client. Like the hub it answers ``HEAD`` with the metadata the client reads
(``X-Repo-Commit``, ``ETag``; for LFS files ``X-Linked-Etag`` with the sha256 and
``X-Linked-Size``), ``GET`` with the bytes (``Range`` honoured: 206), 404 with
``X-Error-Code: EntryNotFound``, 401 with ``X-Error-Code: GatedRepo`` unless the token is sent; it
can redirect to a "CDN" (a second server: another origin, as the hub's CDN is) with the metadata
on the redirect only, and drop a
connection half-way through a body (once per file, when told to). Every request is recorded.

    with FakeHub() as hub:
        hub.add("org/model", "main", "model.bin", data, lfs=True)
        pull(entry, models_dir, hub=HubOptions(hub_url=hub.url, cache_dir=cache))
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
_COMMIT = re.compile(r"[0-9a-f]{40}")
COMMIT = "c0ffee" + "0" * 34
"""The commit every branch of the fake points at."""


@dataclass
class HostedFile:
    data: bytes
    lfs: bool = False
    """An LFS file: ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size``, like the hub sends."""
    drop_after: int | None = None
    """Close the connection after this many body bytes, once (the next request is served)."""
    token: str | None = None
    """Answer 401 (gated) unless ``Authorization: Bearer <token>`` is sent."""
    claimed_sha256: str | None = None
    """Send this in ``X-Linked-Etag`` instead of the true sha256 (a hub that lies)."""

    def etag(self) -> str:
        if self.lfs:
            return self.claimed_sha256 or hashlib.sha256(self.data).hexdigest()
        # A git blob id, as the hub sends for files kept in git.
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    status: int


class FakeHub:
    """The fake; a context manager. ``redirect=True`` answers ``/resolve/`` with a 302 to the
    CDN server."""

    def __init__(self, *, redirect: bool = False) -> None:
        self.redirect = redirect
        self.files: dict[str, HostedFile] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self)) for _ in "hc"]
        self._threads = []
        for server in self._servers:
            server.daemon_threads = True
            self._threads.append(
                threading.Thread(
                    target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
                )
            )

    @property
    def url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cdn_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, repo: str, revision: str, path: str, data: bytes, **options: Any) -> HostedFile:
        hosted = HostedFile(data, **options)
        self.files[f"/{repo}/resolve/{revision}/{path}"] = hosted
        return hosted

    def requests_for(self, path: str, method: str = "GET") -> list[Recorded]:
        """The requests of ``method`` whose path ends with ``path``."""
        return [r for r in self.requests if r.path.endswith(path) and r.method == method]

    def __enter__(self) -> FakeHub:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server, thread in zip(self._servers, self._threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def record(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(handler.command, unquote(handler.path), headers, status))


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = unquote(self.path)
            cdn = path.startswith("/cdn/")
            hosted = hub.files.get(path.removeprefix("/cdn"))
            if hosted is None:
                return self._empty(404, "EntryNotFound")
            if hosted.token and self.headers.get("authorization") != f"Bearer {hosted.token}":
                return self._empty(401, "GatedRepo")
            if hub.redirect and not cdn:
                return self._redirect(path, hosted)
            self._serve(hosted, path, body=body, metadata=not hub.redirect)

        def _metadata(self, hosted: HostedFile, path: str) -> None:
            revision = path.removeprefix("/cdn").split("/resolve/", 1)[1].split("/", 1)[0]
            commit = revision if _COMMIT.fullmatch(revision) else COMMIT
            self.send_header("X-Repo-Commit", commit)
            if hosted.lfs:
                self.send_header("X-Linked-Etag", f'"{hosted.etag()}"')
                self.send_header("X-Linked-Size", str(len(hosted.data)))
            else:
                self.send_header("ETag", f'"{hosted.etag()}"')

        def _redirect(self, path: str, hosted: HostedFile) -> None:
            hub.record(self, 302)
            self.send_response(302)
            self.send_header("Location", hub.cdn_url + "/cdn" + path)
            self._metadata(hosted, path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, hosted: HostedFile, path: str, *, body: bool, metadata: bool) -> None:
            data, start = hosted.data, 0
            match = _RANGE.fullmatch(self.headers.get("range", ""))
            if match is not None:
                start = int(match.group(1))
            status = 206 if match is not None else 200
            hub.record(self, status)
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if metadata:
                self._metadata(hosted, path)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if body:
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

        def _empty(self, status: int, error_code: str) -> None:
            hub.record(self, status)
            self.send_response(status)
            self.send_header("X-Error-Code", error_code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
