"""Every error django-tensorpix raises, rooted at :class:`TensorPixError`.

Remote errors carry the request that failed (method and path, never the API key or a
presigned URL's signature) so a message in a log says what went wrong and where.
Like django-anymail's, some also inherit the built-in type a caller may already catch.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class TensorPixError(Exception):
    """Base class of every django-tensorpix error."""


class ConfigurationError(TensorPixError, ImproperlyConfigured):
    """The ``TENSORPIX`` settings cannot work: no account of that name, no or a broken key.

    Raised when a client is built, i.e. only where TensorPix is about to be called, so
    commands that never call it (``migrate``, ``collectstatic``) run without a key. Also
    Django's ``ImproperlyConfigured``, which is what hosts catch for settings mistakes.
    """


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


class InvalidRequest(APIError, ValueError):
    """400: TensorPix refused the request's content.

    TensorPix answers 400 for invalid fields, and also (per its guides) for too few Credits
    and a full storage quota, with the same documented body
    ``{"errors": {field: [message, ...]}, "non_field_errors": [message, ...]}``, exposed as
    ``field_errors`` and ``non_field_errors``. Nothing documented tells those cases apart,
    so they are one exception; show the messages to whoever can act on them.
    """

    @property
    def field_errors(self) -> dict[str, list[str]]:
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        if not isinstance(errors, dict):
            return {}
        return {str(key): _messages(value) for key, value in errors.items()}

    @property
    def non_field_errors(self) -> list[str]:
        if not isinstance(self.body, dict):
            return []
        return _messages(self.body.get("non_field_errors", []))


def _messages(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


class InsufficientCredits(APIError):
    """402 Payment Required (listed on TensorPix's from-url endpoints): too few Credits."""


class TransientError(TensorPixError):
    """A connection error, timeout or retryable status that the retries gave up on.

    ``status`` is the last HTTP status received (``None`` when no answer came). A POST's
    failure in transit is its subclass :class:`OutcomeUnknown`, which is not retryable.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class OutcomeUnknown(TransientError):
    """A POST broke off in transit or got a 5xx: TensorPix may have acted on it.

    Never resend such a request blindly: a create may have been billed. Submission code
    reconciles first (looks for what the lost request may have created).
    """


class DownloadError(APIError):
    """A storage (presigned) URL answered with an error, or redirected where we won't follow.

    ``status`` is the storage's HTTP status (a 403 usually means the signature expired:
    fetch the object again from TensorPix for a fresh URL).
    """


class MalformedResponse(TensorPixError, ValueError):
    """TensorPix answered with a body that is not the JSON we expect (or not safely readable).

    Also raised for a ``next`` link the client refuses to follow and for a listing that
    makes no progress, so a hostile or broken server ends a sync with a clear error.
    ``status`` is the HTTP status of the answer, when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ResponseTooLarge(MalformedResponse):
    """A response body grew past ``MAX_RESPONSE_BYTES`` (after decompression)."""


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
