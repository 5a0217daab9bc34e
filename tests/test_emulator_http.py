"""HTTP-level behaviour of the emulator: authentication, routing, keep-alive."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest
import requests

from tests.openapi_schema import validate

PROTECTED = [
    ("GET", "/api/accounts/profile/balance/"),
    ("GET", "/api/jobs/"),
    ("POST", "/api/jobs/"),
    ("POST", "/api/jobs/from-url/"),
    ("GET", "/api/jobs/1/"),
    ("DELETE", "/api/jobs/1/"),
    ("GET", "/api/ml-models/"),
    ("GET", "/api/videos/"),
    ("POST", "/api/videos/"),
    ("GET", "/api/videos/1/"),
    ("DELETE", "/api/videos/1/"),
    ("GET", "/api/restored-videos/"),
    ("GET", "/api/restored-videos/1/"),
    ("DELETE", "/api/restored-videos/1/"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": "Bearer test-key"}, "Authentication credentials were not provided."),
        ({"Authorization": "Token wrong"}, "Invalid token."),
    ],
)
def test_every_endpoint_requires_the_token(emulator, method, path, headers, detail):
    response = requests.request(method, emulator.base_url + path, headers=headers)

    assert response.status_code == 401
    validate("UnauthenticatedError", response.json(), strict=True)
    assert response.json()["detail"] == detail
    assert response.headers["WWW-Authenticate"] == "Token"


def test_token_scheme_is_case_insensitive_like_drf(emulator):
    response = requests.get(
        f"{emulator.base_url}/api/jobs/", headers={"Authorization": "token test-key"}
    )

    assert response.status_code == 200


def test_unknown_path_is_a_404_and_wrong_method_a_405(emulator):
    headers = {"Authorization": "Token test-key"}

    missing = requests.get(f"{emulator.base_url}/api/nothing/", headers=headers)
    no_slash = requests.get(f"{emulator.base_url}/api/jobs", headers=headers)
    wrong_method = requests.put(f"{emulator.base_url}/api/jobs/", headers=headers)

    assert missing.status_code == no_slash.status_code == 404
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_one_session_reuses_its_connection(emulator):
    with requests.Session() as session:
        session.headers["Authorization"] = "Token test-key"
        for _ in range(5):
            assert session.get(f"{emulator.base_url}/api/jobs/").status_code == 200

    assert len(emulator.requests) == 5


def test_refused_upload_body_does_not_break_the_next_request_on_the_connection(emulator):
    with requests.Session() as session:
        unauthorized = session.post(
            f"{emulator.base_url}/api/jobs/from-url/", json={"video_url": "x" * 100_000}
        )
        session.headers["Authorization"] = "Token test-key"
        after = session.get(f"{emulator.base_url}/api/jobs/")

    assert unauthorized.status_code == 401
    assert after.status_code == 200


def test_balance_is_settable(emulator):
    emulator.balance = Decimal("12.5")
    response = requests.get(
        f"{emulator.base_url}/api/accounts/profile/balance/",
        headers={"Authorization": "Token test-key"},
    )

    validate("CreditsBalance", response.json(), strict=True)
    assert response.json() == {"balance_usd": "12.5000"}


def test_an_emulator_bug_is_a_500_not_a_dropped_connection(emulator, monkeypatch, caplog):
    def broken(job_id: int) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(emulator.state, "get_job", broken)

    response = requests.get(
        f"{emulator.base_url}/api/jobs/1/", headers={"Authorization": "Token test-key"}
    )

    assert response.status_code == 500
    validate("GenericError", response.json(), strict=True)
    assert "boom" in caplog.text


def test_balance_accepts_numbers_and_strings_as_credits(emulator):
    emulator.balance = 3
    as_int = emulator.balance
    emulator.balance = "7.25"

    assert as_int == Decimal("3")
    assert emulator.balance == Decimal("7.25")


def test_an_emulator_bug_is_logged_not_hidden_as_a_reset(emulator, http, monkeypatch, caplog):
    def broken_handler(*args, **kwargs):
        raise RuntimeError("emulator bug")

    monkeypatch.setattr(emulator._server.api, "handle", broken_handler)
    with caplog.at_level(logging.ERROR, logger="django_tensorpix.testing"):
        with pytest.raises(requests.ConnectionError):
            http.get(f"{emulator.base_url}/api/jobs/")
        deadline = time.monotonic() + 2
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "failed to answer" in caplog.text
    assert "emulator bug" in caplog.text
