"""The retry policy on its own: backoff bounds and Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from django_tensorpix.retry import RetryPolicy, parse_retry_after

POLICY = RetryPolicy(max_retries=4, backoff_base=0.5, backoff_max=3.0, retry_after_max=60.0)


def test_backoff_grows_exponentially_under_full_jitter():
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0)]:
        waits = [POLICY.backoff(attempt) for _ in range(200)]
        assert all(0.0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2, "full jitter should use the whole range"
        assert len(set(waits)) > 100, "waits should be jittered, not fixed"


def test_backoff_is_capped_even_for_absurd_attempt_numbers():
    assert all(POLICY.backoff(attempt) <= 3.0 for attempt in (5, 50, 5000))


def test_policy_reads_settings(settings):
    settings.TENSORPIX = {
        "MAX_RETRIES": 7,
        "RETRY_BACKOFF_BASE": 0.2,
        "RETRY_BACKOFF_MAX": 9,
        "RETRY_AFTER_MAX": 11,
    }
    assert RetryPolicy.from_settings() == RetryPolicy(7, 0.2, 9.0, 11.0)
    assert RetryPolicy.from_settings(max_retries=0).max_retries == 0


def test_retry_after_in_seconds():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0


def test_retry_after_as_http_date():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == 30.0


def test_retry_after_date_in_the_past_means_now():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(header, now=now) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5e9", "Mon, 99 Foo 2026"])
def test_unusable_retry_after_is_ignored(header):
    assert parse_retry_after(header) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("²", None),  # str.isdigit() says yes; float() says no
        ("٣", None),
        ("9" * 400, 365 * 24 * 3600.0),
        ("1e400", None),
        ("Mon, 01 Jan 99999 00:00:00 GMT", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 365 * 24 * 3600.0),
        ("120", 120.0),
    ],
)
def test_parse_retry_after_never_raises_and_stays_finite(value, expected):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected
