"""What the remote engines share: one OpenAI-compatible server behind an ``httpx.Client``.

The engines themselves live in ``remote_tts``, ``remote_stt`` and ``remote_chat`` (``remote``
gathers them). Every
transport problem becomes a ``voxserve.errors`` error here, so the engines never leak ``httpx``
exceptions, remote stack traces or response bodies:

    EngineFailure                 the remote answered an error status, or the exchange broke
    └── RemoteUnreachable (503)   nothing answers at the base URL (refused, DNS, connect timeout,
                                  or the connection closed before any answer)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from voxserve.errors import EngineFailure

_CONNECT_TIMEOUT = 10.0
"""Seconds to open a connection; a remote that cannot be reached should fail fast, while a slow
generation may take the full ``timeout``."""
_ERROR_BODY_BYTES = 4096
"""Enough of an error body to find its message; larger bodies are not read."""
_MESSAGE_CHARS = 200


class RemoteUnreachable(EngineFailure):
    """The remote server cannot be reached; the client may retry once it is back."""

    status = 503
    code = "remote_unreachable"


class RemoteStatusError(EngineFailure):
    """The remote server answered an error status (``remote_status`` keeps it)."""

    def __init__(self, message: str, *, remote_status: int) -> None:
        super().__init__(message)
        self.remote_status = remote_status


class RemoteServer:
    """One OpenAI-compatible server: base URL, bearer key, timeouts and error mapping.

    ``httpx.Client`` is thread-safe, so one instance serves every worker thread of an engine.
    ``transport`` lets tests plug in an ``httpx`` transport; normal use leaves it unset.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT))
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The HTTP client, opened on first use (``close`` ends it; it reopens when needed)."""
        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=headers,
                    timeout=self._timeout,
                    transport=self._transport,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request and read the whole answer; error statuses raise."""
        with self.stream(method, path, **kwargs) as response:
            response.read()
            return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Send a request and hand over the response before its body is read.

        Transport errors raised while the caller reads the body inside the ``with`` block are
        mapped too; leaving the block early closes the connection, which cancels the remote work.

        Raises:
            RemoteUnreachable: nothing answers at the base URL.
            RemoteStatusError: the remote answered a 4xx or 5xx status.
            EngineFailure: the exchange broke or timed out.
        """
        answered = False
        try:
            with self.client.stream(method, path, **kwargs) as response:
                answered = True
                if response.is_error:
                    raise self._status_error(response)
                yield response
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RemoteUnreachable(
                f"The remote server at {self.base_url} is unreachable."
            ) from exc
        except httpx.TimeoutException as exc:
            raise EngineFailure(f"The remote server at {self.base_url} timed out.") from exc
        except httpx.HTTPError as exc:
            if not answered and isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
                # It went away before answering (a kept-alive connection to a server that died):
                # as unreachable as a refused connection, and as safe to try elsewhere.
                raise RemoteUnreachable(
                    f"The remote server at {self.base_url} closed the connection unanswered."
                ) from exc
            raise EngineFailure(
                f"The connection to the remote server at {self.base_url} broke."
            ) from exc

    def _status_error(self, response: httpx.Response) -> RemoteStatusError:
        detail = _error_message(response)
        message = f"The remote server answered {response.status_code}"
        message += f": {detail}" if detail else f" {response.reason_phrase}."
        return RemoteStatusError(message, remote_status=response.status_code)


def _error_message(response: httpx.Response) -> str:
    """The ``message`` of an OpenAI-style error body, shortened; '' when there is none."""
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _ERROR_BODY_BYTES:
            break
    try:
        return error_text(json.loads(body))
    except ValueError:
        return ""


def error_text(data: object) -> str:
    """The message of an error object (``{"error": {"message": ...}}``, ``{"detail": ...}``),
    on one line and at most a couple of hundred characters; '' when there is none."""
    message: object = data
    if isinstance(message, dict):
        message = message.get("error", message)
    if isinstance(message, dict):
        message = message.get("message") or message.get("detail")
    if not isinstance(message, str):
        return ""
    message = " ".join(message.split())
    return message if len(message) <= _MESSAGE_CHARS else message[: _MESSAGE_CHARS - 3] + "..."


def without_none(**fields: Any) -> dict[str, Any]:
    """The fields that are set: remote servers reject explicit nulls for some parameters."""
    return {key: value for key, value in fields.items() if value is not None}
