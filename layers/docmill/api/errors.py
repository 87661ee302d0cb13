"""Errors of the chat API, each with the HTTP status it is answered with.

They are domain errors (``DocmillError``) so the library raises them without knowing about
HTTP; the ASGI app maps ``status`` to the response and ``code`` / ``message`` to the body
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from docmill.errors import DocmillError


class ApiError(DocmillError):
    code = "ApiError"
    status = 400


class Unauthenticated(ApiError):
    code = "unauthenticated"
    status = 401


class Forbidden(ApiError):
    code = "forbidden"
    status = 403


class NotFound(ApiError):
    """Unknown ids *and* ids of another tenant: the answer never reveals that they exist."""

    code = "not_found"
    status = 404


class Conflict(ApiError):
    code = "conflict"
    status = 409


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413


class UnsupportedMedia(ApiError):
    code = "unsupported_file"
    status = 415


class InvalidRequest(ApiError):
    code = "invalid_request"
    status = 422


class RateLimited(ApiError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotImplementedYet(ApiError):
    """A capability this deployment has not wired (e.g. fine-tuning before its back end is set)."""

    code = "not_implemented"
    status = 501
