"""System checks of the submission settings: tensorpix.E030-E036 and W030."""

from typing import Any

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from django_tensorpix.checks import check_submission_settings


def check_ids(**tensorpix: Any) -> list[str | None]:
    with override_settings(TENSORPIX={"API_KEY": "k", **tensorpix}):
        return [message.id for message in check_submission_settings()]


def test_the_defaults_pass():
    assert check_ids() == []


@pytest.mark.parametrize(
    ("tensorpix", "expected"),
    [
        ({"UPLOAD_STORAGE": "nowhere"}, "tensorpix.E030"),
        ({"CREDITS_LOW_ACTION": "ignore"}, "tensorpix.E031"),
        ({"CREDITS_MIN_BALANCE": "lots"}, "tensorpix.E032"),
        ({"CREDITS_MIN_BALANCE": -5}, "tensorpix.E032"),
        ({"CREDITS_MIN_BALANCE": True}, "tensorpix.E032"),
        ({"SUBMIT_GRACE_PERIOD": -1}, "tensorpix.E033"),
        ({"RECONCILE_DELAY": "60"}, "tensorpix.E033"),
        ({"SUBMIT_LEASE": 10, "CONNECT_TIMEOUT": 5, "READ_TIMEOUT": 30}, "tensorpix.E034"),
        ({"RECONCILE_MAX_PAGES": 0}, "tensorpix.E035"),
        ({"ARCHIVE_OUTPUTS": "yes"}, "tensorpix.E036"),
        ({"RECONCILE_DELAY": 10, "CONNECT_TIMEOUT": 5, "READ_TIMEOUT": 30}, "tensorpix.W030"),
    ],
)
def test_each_bad_submission_setting_has_its_id(tensorpix, expected):
    assert check_ids(**tensorpix) == [expected]


def test_valid_thresholds_and_a_warning_is_a_warning():
    assert check_ids(CREDITS_MIN_BALANCE="12.5", CREDITS_LOW_ACTION="warn") == []
    with override_settings(TENSORPIX={"API_KEY": "k", "RECONCILE_DELAY": 0}):
        (message,) = check_submission_settings()
    assert isinstance(message, Warning)
    assert not isinstance(message, Error)
