"""When to retry a TensorPix request, and how long to wait first.

Only idempotent requests are retried: a repeated ``POST /api/jobs/`` can bill the account
twice, so the client never repeats a POST (the submission code reconciles instead).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django_tensorpix.conf import tensorpix_settings

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

# Keeps ``2 ** attempt`` a float that cannot overflow, whatever MAX_RETRIES says.
_MAX_EXPONENT = 32
# Longest wait a Retry-After is read as (a year): longer ones mean the same to the client,
# and a 400-digit header must not become an infinite float.
_MAX_RETRY_AFTER = 365 * 24 * 3600.0
_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait between tries.

    ``retry_after_max`` bounds the wait the server may ask for with ``Retry-After``: a
    longer request makes the client give up at once (raising with the full wait) rather
    than sleep in a worker or come back early only to be throttled again.
    """

    max_retries: int
    backoff_base: float
    backoff_max: float
    retry_after_max: float

    @classmethod
    def from_settings(cls, *, max_retries: int | None = None) -> RetryPolicy:
        return cls(
            max_retries=(tensorpix_settings.MAX_RETRIES if max_retries is None else max_retries),
            backoff_base=tensorpix_settings.RETRY_BACKOFF_BASE,
            backoff_max=tensorpix_settings.RETRY_BACKOFF_MAX,
            retry_after_max=tensorpix_settings.RETRY_AFTER_MAX,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (0-based): exponential, full jitter, capped.

        Full jitter (a uniform draw below the exponential ceiling) spreads out the
        workers that failed together, so they do not all come back at the same instant.
        """
        ceiling = self.backoff_base * 2.0 ** min(attempt, _MAX_EXPONENT)
        return random.uniform(0.0, min(self.backoff_max, ceiling))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or ``None`` if absent/invalid.

    The header is either a number of seconds (ASCII digits only: ``str.isdigit`` also
    accepts ``"²"``) or an HTTP-date (RFC 9110 section 10.2.3); a date in the past means
    "now". Any other value is ignored, and a wait is capped at a year so it stays finite.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        # More digits than a year has seconds is "a year" (and int() of it stays cheap).
        return _MAX_RETRY_AFTER if len(value) > 9 else min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, wait), _MAX_RETRY_AFTER)
