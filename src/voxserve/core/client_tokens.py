"""Browser tokens for realtime sockets: a short-lived secret bound to one owner and one model,
so a web page can open a socket without holding the API key.

A token is signed, not stored: ``vxrt-<payload>.<signature>`` with the server's HMAC key (the
one signed file URLs use), the payload naming the owner, the model and the expiry. Nothing to
clean up; a token stops working when it expires (or when the server's key changes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from voxserve.errors import Unauthorized, ValidationFailed

PREFIX = "vxrt-"
DEFAULT_TTL_SECONDS = 900


@dataclass(frozen=True)
class ClientToken:
    value: str
    owner_id: str
    model: str
    expires_at: datetime


class ClientTokenService:
    """Issues and checks browser tokens.

    Args:
        secret: the server's HMAC key.
        max_ttl_seconds: the longest lifetime a token may ask for.
    """

    def __init__(self, secret: bytes, max_ttl_seconds: int) -> None:
        self._secret = secret
        self._max_ttl = max_ttl_seconds

    def issue(self, owner_id: str, model: str, ttl_seconds: int | None = None) -> ClientToken:
        """A token for ``owner_id`` and ``model``, valid ``ttl_seconds`` (default 900).

        Raises:
            ValidationFailed: a lifetime below 1 s or above the configured maximum.
        """
        ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
        if not 1 <= ttl <= self._max_ttl:
            raise ValidationFailed(
                f"ttl_seconds: {ttl} is outside 1-{self._max_ttl}.", field="ttl_seconds"
            )
        expires = int(time.time()) + ttl
        payload = _b64(json.dumps({"o": owner_id, "m": model, "e": expires}).encode())
        value = f"{PREFIX}{payload}.{self._sign(payload)}"
        return ClientToken(value, owner_id, model, datetime.fromtimestamp(expires, UTC))

    def verify(self, value: str) -> ClientToken:
        """The token ``value`` stands for.

        Raises:
            Unauthorized: not a token of this server, tampered with, or expired.
        """
        payload, _, signature = value.removeprefix(PREFIX).partition(".")
        if not value.startswith(PREFIX) or not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("Invalid client token.")
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if data["e"] <= time.time():
            raise Unauthorized("This client token has expired; ask for a new one.")
        return ClientToken(value, data["o"], data["m"], datetime.fromtimestamp(data["e"], UTC))

    @staticmethod
    def looks_like_token(value: str) -> bool:
        return value.startswith(PREFIX)

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._secret, b"client-token:" + payload.encode(), hashlib.sha256)
        return _b64(digest.digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
