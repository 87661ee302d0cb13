"""Errors of the chat API, each with the HTTP status it is answered with.

They are domain errors (``DocmillError``) so the library raises them without knowing about
HTTP; the ASGI app maps ``status`` to the response and ``code`` / ``message`` to the body
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from docmill.errors import DocmillError


#: HTTP status -> the body's error ``code``: for the errors below (each registers by its status)
#: and for what the framework answers on its own (an unknown route's 404, a wrong method's 405).
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_file",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    501: "not_implemented",
}


def code_for(status: int) -> str:
    return CODES.get(status, "error")


class ApiError(DocmillError):
    """Base of the API's errors; a subclass names its ``status`` and gets its ``code`` from ``CODES``."""

    code = "ApiError"
    status = 400

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = CODES[cls.status]  # a status without a code is a KeyError at import, not a vague body


class Unauthenticated(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    """Unknown ids *and* ids of another tenant: the answer never reveals that they exist."""

    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMedia(ApiError):
    status = 415


class InvalidRequest(ApiError):
    status = 422


class RateLimited(ApiError):
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotImplementedYet(ApiError):
    """A capability this deployment has not wired (e.g. fine-tuning before its back end is set)."""

    status = 501
