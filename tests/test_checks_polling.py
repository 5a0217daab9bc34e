"""System checks of the polling settings (tensorpix.E020-E024)."""

import pytest
from django.test import override_settings

from django_tensorpix.checks import check_tensorpix_settings


def check_ids(**tensorpix: object) -> list[str | None]:
    with override_settings(TENSORPIX={"API_KEY": "k", **tensorpix}):
        return [message.id for message in check_tensorpix_settings()]


def test_default_polling_settings_pass() -> None:
    assert check_ids() == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("POLL_MIN_INTERVAL", 0),
        ("POLL_QUEUED_INTERVAL", -5),
        ("POLL_STALLED_INTERVAL", "3600"),
        ("POLL_AUTH_PAUSE", True),
        ("POLL_BATCH_SIZE", 10.5),
    ],
)
def test_e020_polling_numbers_must_be_positive(key: str, value: object) -> None:
    assert check_ids(**{key: value}) == ["tensorpix.E020"]


@pytest.mark.parametrize("jitter", [-0.1, 1, 1.5, "0.1"])
def test_e021_jitter_is_a_fraction(jitter: object) -> None:
    assert check_ids(POLL_JITTER=jitter) == ["tensorpix.E021"]


def test_e022_floor_above_ceiling() -> None:
    assert check_ids(POLL_MIN_INTERVAL=60, POLL_MAX_INTERVAL=30) == ["tensorpix.E022"]


def test_e023_lease_must_outlast_a_request() -> None:
    assert check_ids(POLL_LEASE=10, CONNECT_TIMEOUT=5, READ_TIMEOUT=30) == ["tensorpix.E023"]


def test_e024_stall_deadline_beyond_the_ceiling() -> None:
    assert check_ids(POLL_STALL_AFTER=100, POLL_MAX_INTERVAL=300) == ["tensorpix.E024"]
