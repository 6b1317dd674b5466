"""Errors of the ``/api/tts`` gateway: ``{"code": <non-zero>, "message": "..."}`` with the HTTP
status of the error. The code is the status times 100 plus a number for the kind of error:

=====  ======  =========================================================
code   status  meaning
=====  ======  =========================================================
40001  400     invalid request (e.g. neither ``voice_id`` nor ``ref_audio``)
40002  400     unsupported by the installed engines (says what to install)
40003  400     voice limit reached
40101  401     missing or wrong API key
40201  402     not enough credits (nothing was generated)
40401  404     not found
40402  404     unknown voice
40501  405     method not allowed
40901  409     conflict
41301  413     request body too large
42201  422     invalid field (too long input, speed out of range, bad audio...)
42901  429     engine busy (see ``Retry-After``)
50000  500     internal error
50001  500     engine failure
50301  503     no engine configured for this
=====  ======  =========================================================

Any other error answers its status times 100.
"""

from __future__ import annotations

from typing import Any

from voxserve.api.adapters.tts_gateway.protocol import TtsError
from voxserve.api.shapes import ErrorInfo
from voxserve.api.streaming import sse
from voxserve.errors import VoxError

CODES: dict[str, int] = {
    "invalid_request": 40001,
    "unsupported": 40002,
    "limit_exceeded": 40003,
    "unauthorized": 40101,
    "insufficient_credits": 40201,
    "not_found": 40401,
    "invalid_voice": 40402,
    "method_not_allowed": 40501,
    "conflict": 40901,
    "payload_too_large": 41301,
    "validation_failed": 42201,
    "overloaded": 42901,
    "internal_error": 50000,
    "engine_failure": 50001,
    "service_unavailable": 50301,
}


def gateway_code(code: str, status: int) -> int:
    return CODES.get(code, status * 100)


def render_error(err: ErrorInfo) -> dict[str, Any]:
    """The gateway's error body."""
    return TtsError(code=gateway_code(err.code, err.status), message=err.message).model_dump()


def error_event(exc: VoxError) -> bytes:
    """The SSE event that ends a stream which failed after its first audio."""
    body = TtsError(code=gateway_code(exc.code, exc.status), message=exc.message)
    return sse(body.model_dump(), "error")
