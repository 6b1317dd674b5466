"""The one error tree of voxserve. Services raise these; each API adapter renders them in its own
wire envelope. No web framework is imported here.

    VoxError
    ├── InvalidRequest         400  the request is well-formed but cannot be served as asked
    │   ├── ValidationFailed   422  a field is out of range or malformed (``field`` names it)
    │   └── Unsupported        400  the engine cannot do it (says what to install or configure)
    ├── Unauthorized           401
    ├── PaymentRequired        402  the owner's credit balance is spent
    ├── Forbidden              403  refused for who or where it comes from (cross-site, not admin)
    ├── NotFound               404  also for other owners' objects (no existence leak)
    ├── Conflict               409
    ├── PayloadTooLarge        413
    ├── UnsupportedMediaType   415  a JSON body not sent as ``application/json``
    ├── LimitExceeded          400  a per-owner quota (e.g. custom voices) is reached;
    │                               429 would tell clients to retry, which cannot help
    ├── Overloaded             429  an engine queue is full; ``retry_after`` seconds
    ├── EngineFailure          500  the engine failed while working
    └── ServiceUnavailable     503  nothing is configured to serve this (says how to configure it)
"""

from __future__ import annotations


class VoxError(Exception):
    """Base of every error a service may raise to a client."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequest(VoxError):
    status = 400
    code = "invalid_request"


class ValidationFailed(InvalidRequest):
    status = 422
    code = "validation_failed"


class Unsupported(InvalidRequest):
    status = 400
    code = "unsupported"


class Unauthorized(VoxError):
    status = 401
    code = "unauthorized"


class PaymentRequired(VoxError):
    status = 402
    code = "insufficient_credits"


class Forbidden(VoxError):
    status = 403
    code = "forbidden"


class NotFound(VoxError):
    status = 404
    code = "not_found"


class Conflict(VoxError):
    status = 409
    code = "conflict"


class PayloadTooLarge(VoxError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(VoxError):
    status = 415
    code = "unsupported_media_type"


class LimitExceeded(VoxError):
    status = 400
    code = "limit_exceeded"


class Overloaded(VoxError):
    status = 429
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EngineFailure(VoxError):
    status = 500
    code = "engine_failure"


class ServiceUnavailable(VoxError):
    status = 503
    code = "service_unavailable"


class VoiceNotFound(NotFound):
    code = "invalid_voice"

    def __init__(self, voice_id: str) -> None:
        super().__init__(f"Voice '{voice_id}' not found.", field="voice_id")
        self.voice_id = voice_id
