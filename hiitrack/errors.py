"""The errors a client can cause, each with the HTTP status it answers.

Any layer raises these; the one render helper (hiitrack.web.render) turns
them into ``{"error": message}`` with the status.  Anything else that
escapes is a bug: logged, and answered with a generic 500.
"""

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotAllowed",
    "NotFound",
    "OperatorOnly",
    "TooLarge",
    "TooManyRequests",
    "Unauthorized",
]


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401
    realm = "hiitrack"
    """The realm of the Basic challenge a browser shows."""


class OperatorOnly(Unauthorized):
    """/metrics, whose credentials are the operator's, not a user's."""

    realm = "hiitrack metrics"


class Conflict(ApiError):
    """Something that already exists (docs/api.md answers 403 for it)."""

    status = 403


class Forbidden(ApiError):
    """Credentials are fine but the request is refused (a cross-site form)."""

    status = 403


class NotFound(ApiError):
    status = 404


class NotAllowed(ApiError):
    status = 405


class TooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    """Back off: the answer carries ``retry_after`` seconds (also as ``Retry-After``)."""

    status = 429
