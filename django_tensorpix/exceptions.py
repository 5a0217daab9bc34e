"""Every error django-tensorpix raises, rooted at :class:`TensorPixError`.

Remote errors carry the request that failed (method and path, never the API key or a
presigned URL's signature) so a message in a log says what went wrong and where.
Like django-anymail's, some also inherit the built-in type a caller may already catch.
"""

from __future__ import annotations

from typing import Any


class TensorPixError(Exception):
    """Base class of every django-tensorpix error."""


class APIError(TensorPixError):
    """TensorPix answered with an error status.

    ``status`` is the HTTP status, ``body`` the parsed JSON body (or ``None``), and
    ``method``/``path`` name the request.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.method = method
        self.path = path


class AuthenticationError(APIError, PermissionError):
    """401 or 403: the key is wrong, revoked, or not allowed to use the API."""


class NotFound(APIError, LookupError):
    """404: the object does not exist (or belongs to another account)."""


class Conflict(APIError):
    """409: e.g. cancelling an already-canceled job, deleting a video an active job uses."""


class RateLimited(APIError):
    """429 after the retries were used up; ``retry_after`` is the wait TensorPix asked for."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InsufficientCredits(APIError):
    """400 or 402 saying the account has too few Credits for the job."""


class QuotaExceeded(APIError):
    """400 saying the account's storage quota is full."""


class TransientError(TensorPixError):
    """A connection error, timeout or 5xx that the retries gave up on.

    A POST's failure in transit is its subclass :class:`OutcomeUnknown`.
    """

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class OutcomeUnknown(TransientError):
    """A POST broke off in transit or got a 5xx: TensorPix may have acted on it.

    Never resend such a request blindly: a create may have been billed. Submission code
    reconciles first (looks for what the lost request may have created).
    """


class MalformedResponse(TensorPixError, ValueError):
    """TensorPix answered 2xx with a body that is not the JSON we expect."""


class MalformedPayload(TensorPixError, ValueError):
    """A TensorPix object lacks a field, has a wrong type or a value out of range.

    Raised by the sync before anything is written; names the object and the field.
    """

    def __init__(self, message: str, *, object_type: str = "", field: str = "") -> None:
        super().__init__(message)
        self.object_type = object_type
        self.field = field


# Submission (django_tensorpix.services).


class CreditsTooLow(TensorPixError):
    """The Credits balance is below ``CREDITS_MIN_BALANCE`` and the setting says refuse."""

    def __init__(self, message: str, *, balance: Any = None, threshold: Any = None) -> None:
        super().__init__(message)
        self.balance = balance
        self.threshold = threshold


class NotCancelable(TensorPixError):
    """The job cannot be canceled now: its create request may be on its way to TensorPix."""


class NoOutput(TensorPixError, LookupError):
    """The job has no output to download or archive (not finished, or deleted remotely)."""


class ArchiveIncomplete(TensorPixError):
    """The downloaded output's size differs from the size TensorPix reported for it."""
