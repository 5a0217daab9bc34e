"""Retries, timeouts and transport failures, with faults injected into the emulator.

The client is given a recording ``sleep``, so every wait it chose is visible and no
test actually sleeps through a backoff.
"""

from __future__ import annotations

import io
import logging
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import Account
from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TensorPixError,
    TransientError,
)
from django_tensorpix.testing import TensorPixEmulator

MAX_RETRIES = 3


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(emulator, sleeps) -> Iterator[Callable[..., TensorPixClient]]:
    clients: list[TensorPixClient] = []

    def make(api_key: str = emulator.api_key, base_url: str = emulator.base_url, **options):
        options.setdefault("max_retries", MAX_RETRIES)
        client = TensorPixClient(
            Account("default", api_key, base_url), sleep=sleeps.append, **options
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> TensorPixClient:
    return make_client()


def _calls(emulator, method: str, path: str) -> int:
    return sum(1 for r in emulator.requests if (r.method, r.path) == (method, path))


def _a_model_id(client: TensorPixClient) -> int:
    return next(iter(client.iter_ml_models()))["id"]


# Idempotent requests are retried


@pytest.mark.parametrize("status", [502, 503, 504])
def test_get_is_retried_after_a_gateway_error(emulator, client, sleeps, status):
    (job_id,) = emulator.seed_jobs(1)
    emulator.inject("GET /api/jobs/{id}/", "error", status=status, times=2)

    assert client.get_job(job_id)["id"] == job_id

    assert _calls(emulator, "GET", f"/api/jobs/{job_id}/") == 3
    assert len(sleeps) == 2
    assert all(0 <= wait <= 0.05 for wait in sleeps), "RETRY_BACKOFF_MAX is 0.05 in tests"


def test_get_gives_up_after_max_retries_with_a_transient_error(emulator, client, sleeps):
    (job_id,) = emulator.seed_jobs(1)
    emulator.inject("GET /api/jobs/{id}/", "error", status=503, times=10)

    with pytest.raises(TransientError) as caught:
        client.get_job(job_id)

    message = str(caught.value)
    assert message.startswith(f"GET /api/jobs/{job_id}/ failed: 503")
    assert message.endswith(f"(gave up after {MAX_RETRIES + 1} attempts)")
    assert _calls(emulator, "GET", f"/api/jobs/{job_id}/") == MAX_RETRIES + 1
    assert len(sleeps) == MAX_RETRIES


def test_internal_server_error_on_get_is_not_retried(emulator, client, sleeps):
    (job_id,) = emulator.seed_jobs(1)
    emulator.inject("GET /api/jobs/{id}/", "error", status=500)

    with pytest.raises(APIError) as caught:
        client.get_job(job_id)

    assert caught.value.status == 500
    assert _calls(emulator, "GET", f"/api/jobs/{job_id}/") == 1
    assert sleeps == []


def test_connection_reset_on_get_is_retried(emulator, client, sleeps):
    emulator.inject("GET /api/accounts/profile/balance/", "reset")

    assert "balance_usd" in client.get_balance()
    assert len(sleeps) == 1


def test_list_pages_are_retried_individually(emulator, settings, make_client, sleeps):
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 2}
    seeded = emulator.seed_jobs(4)
    client = make_client()
    pages = client.iter_jobs()
    first = [next(pages), next(pages)]
    emulator.inject("GET /api/jobs/", "error", status=502)

    rest = list(pages)

    assert sorted(job["id"] for job in first + rest) == sorted(seeded)
    assert len(sleeps) == 1


def test_delete_is_retried_after_a_gateway_error(emulator, client, sleeps):
    video_id = emulator.add_video()
    emulator.inject("DELETE /api/videos/{id}/", "error", status=502)

    client.delete_video(video_id)

    assert _calls(emulator, "DELETE", f"/api/videos/{video_id}/") == 2
    with pytest.raises(NotFound):
        client.get_video(video_id)


def test_read_timeout_is_retried_then_reported(emulator, make_client, sleeps):
    client = make_client(read_timeout=0.2, max_retries=1)
    emulator.inject("GET /api/accounts/profile/balance/", "latency", delay=1.0, times=2)

    with pytest.raises(TransientError, match="timed out") as caught:
        client.get_balance()

    assert "gave up after 2 attempts" in str(caught.value)
    assert len(sleeps) == 1


def test_timeouts_come_from_settings(emulator, settings, make_client, sleeps):
    settings.TENSORPIX = {**settings.TENSORPIX, "READ_TIMEOUT": 0.2}
    client = make_client(max_retries=0)
    emulator.inject("GET /api/accounts/profile/balance/", "latency", delay=1.0)

    with pytest.raises(TransientError, match="timed out waiting for the response"):
        client.get_balance()


def test_unreachable_host_is_a_transient_error_after_retries(make_client, sleeps):
    client = make_client(base_url="http://127.0.0.1:9", connect_timeout=0.5)

    with pytest.raises(TransientError, match=r"GET /api/jobs/1/ failed: connection") as caught:
        client.get_job(1)

    assert (caught.value.method, caught.value.path) == ("GET", "/api/jobs/1/")
    assert len(sleeps) == MAX_RETRIES


def test_truncated_body_is_a_malformed_response(emulator, client):
    (job_id,) = emulator.seed_jobs(1)
    emulator.inject("GET /api/jobs/{id}/", "truncated")

    with pytest.raises(MalformedResponse, match=f"GET /api/jobs/{job_id}/"):
        client.get_job(job_id)


# Rate limiting and Retry-After


def test_retry_after_in_seconds_is_honoured(emulator, client, sleeps):
    emulator.inject("GET /api/accounts/profile/balance/", "rate_limit", retry_after=1)

    client.get_balance()

    assert sleeps == [1.0]


def test_retry_after_as_an_http_date_is_honoured(emulator, make_client, sleeps):
    # Read against the client's clock, not the wall clock: the wait is exact.
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=2), usegmt=True)
    emulator.inject("GET /api/accounts/profile/balance/", "rate_limit", retry_after=header)

    make_client(clock=lambda: now).get_balance()

    assert sleeps == [2.0]


def test_rate_limit_outlasting_the_retries_raises_rate_limited(emulator, client, sleeps):
    emulator.inject("GET /api/jobs/", "rate_limit", retry_after=0, times=10)

    with pytest.raises(RateLimited) as caught:
        list(client.iter_jobs())

    assert caught.value.status == 429
    assert caught.value.retry_after == 0
    assert sleeps == [0.0] * MAX_RETRIES
    assert _calls(emulator, "GET", "/api/jobs/") == MAX_RETRIES + 1


def test_retry_after_longer_than_the_cap_is_raised_at_once(emulator, client, sleeps):
    emulator.inject("GET /api/accounts/profile/balance/", "rate_limit", retry_after=600)

    with pytest.raises(RateLimited, match=r"asked to wait 600s\)$") as caught:
        client.get_balance()

    assert caught.value.retry_after == 600
    assert sleeps == []
    assert _calls(emulator, "GET", "/api/accounts/profile/balance/") == 1


# POST is never retried


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_retried_after_a_server_error(emulator, client, sleeps, status):
    model_id = _a_model_id(client)
    emulator.inject("POST /api/jobs/from-url/", "error", status=status)

    with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
        client.create_job_from_url(video_url="https://example.com/v.mp4", ml_models=[model_id])

    assert _calls(emulator, "POST", "/api/jobs/from-url/") == 1
    assert sleeps == []


def test_rate_limited_post_is_not_retried(emulator, client, sleeps):
    video_id = emulator.add_video()
    model_id = _a_model_id(client)
    emulator.inject("POST /api/jobs/", "rate_limit", retry_after=1)

    with pytest.raises(RateLimited) as caught:
        client.create_job(input_video=video_id, ml_models=[model_id])

    assert caught.value.retry_after == 1
    assert _calls(emulator, "POST", "/api/jobs/") == 1
    assert sleeps == []


def test_lost_response_on_post_is_an_unknown_outcome_sent_once(emulator, client, sleeps):
    model_id = _a_model_id(client)
    emulator.inject("POST /api/jobs/from-url/", "lost_response")

    with pytest.raises(OutcomeUnknown, match="outcome is unknown") as caught:
        client.create_job_from_url(video_url="https://example.com/v.mp4", ml_models=[model_id])

    assert (caught.value.method, caught.value.path) == ("POST", "/api/jobs/from-url/")
    assert _calls(emulator, "POST", "/api/jobs/from-url/") == 1
    assert sleeps == []
    assert len(list(client.iter_jobs())) == 1, "the job was created although the answer was lost"


def test_upload_is_not_retried_after_a_reset(emulator, client, sleeps):
    emulator.inject("POST /api/videos/", "reset")

    with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
        client.upload_video(io.BytesIO(b"x" * 4096), "a.mp4")

    assert sleeps == []


# The key stays secret


def test_api_key_never_shows_in_logs_or_errors(caplog, settings):
    key = "sk-RECOGNISABLE-123"
    wrong_key = "sk-RECOGNISABLE-WRONG-456"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django_tensorpix")
    errors: list[BaseException] = []

    with TensorPixEmulator(api_key=key) as emulator:
        account = Account("default", key, emulator.base_url)
        (job_id,) = emulator.seed_jobs(1, status=2)
        emulator.inject("GET /api/jobs/{id}/", "error", status=503, times=10)
        emulator.inject("POST /api/jobs/from-url/", "lost_response")
        emulator.inject("GET /api/accounts/profile/balance/", "truncated")
        emulator.inject("GET /api/videos/", "rate_limit", retry_after=3600)
        emulator.inject("DELETE /api/videos/{id}/", "reset", times=10)
        with TensorPixClient(account, max_retries=2, sleep=lambda _: None) as client:
            for failing_call in (
                lambda: client.get_job(job_id),
                lambda: client.create_job_from_url(video_url="https://e.com/v.mp4", ml_models=[1]),
                client.get_balance,
                lambda: list(client.iter_videos()),
                lambda: client.delete_video(1),
                lambda: client.get_restored_video(424242),
            ):
                with pytest.raises(TensorPixError) as caught:
                    failing_call()
                errors.append(caught.value)
            output_url = emulator.job_payload(job_id)["output_video"]["file"]
            client.download(output_url, io.BytesIO())
        with TensorPixClient(Account("default", wrong_key, emulator.base_url)) as stranger:
            with pytest.raises(AuthenticationError) as caught:
                stranger.get_balance()
            errors.append(caught.value)
            texts = [repr(client), repr(stranger), repr(account)]

    with TensorPixClient(Account("default", key, "http://127.0.0.1:9"), max_retries=0) as offline:
        with pytest.raises(TransientError) as caught:
            offline.get_job(1)
        errors.append(caught.value)

    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        texts += [repr(value) for value in vars(error).values()]
    texts.append(caplog.text)
    texts += [repr(record.args) for record in caplog.records]
    assert len(errors) == 8
    assert caplog.records, "the run should have logged something to scan"
    for text in texts:
        assert key not in text
        assert wrong_key not in text
        assert "RECOGNISABLE" not in text
    signature = output_url.partition("?")[2]
    with_signature = [r for r in caplog.records if signature in r.getMessage()]
    assert with_signature, "the download should log its full URL at DEBUG"
    assert {r.levelno for r in with_signature} == {logging.DEBUG}
