"""Fault injection and the request log of the emulator."""

from __future__ import annotations

import json
import time

import pytest
import requests

from django_tensorpix.testing import TensorPixEmulator
from tests.openapi_schema import validate

JOB_ROUTE = "GET /api/jobs/{id}/"


def jobs_url(emulator: TensorPixEmulator) -> str:
    return f"{emulator.base_url}/api/jobs/"


def create_job(http: requests.Session, emulator: TensorPixEmulator) -> requests.Response:
    return http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        json={"video_url": "https://media.example.com/a.mp4", "ml_models": [4]},
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_error_fault_answers_its_status_once(http, emulator, status):
    emulator.inject("GET /api/jobs/", "error", status=status)

    failed = http.get(jobs_url(emulator))
    recovered = http.get(jobs_url(emulator))

    assert failed.status_code == status
    assert recovered.status_code == 200
    if status == 500:
        validate("GenericError", failed.json(), strict=True)
    else:
        assert failed.headers["Content-Type"] == "text/html"


def test_error_fault_defaults_to_503_and_does_not_create_anything(http, emulator):
    emulator.inject("POST /api/jobs/from-url/", "error")

    response = create_job(http, emulator)

    assert response.status_code == 503
    assert emulator.state.jobs == {}


def test_error_fault_needs_a_server_error_status(emulator):
    with pytest.raises(ValueError, match="5xx"):
        emulator.inject("*", "error", status=404)


def test_rate_limit_fault_sends_retry_after_seconds(http, emulator):
    emulator.inject("*", "rate_limit", retry_after=7)

    response = http.get(jobs_url(emulator))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    validate("RateLimitError", response.json(), strict=True)
    assert "7 seconds" in response.json()["detail"]


def test_rate_limit_fault_can_send_an_http_date(http, emulator):
    date = "Sat, 28 Nov 2026 16:00:00 GMT"
    emulator.inject("*", "rate_limit", retry_after=date)

    assert http.get(jobs_url(emulator)).headers["Retry-After"] == date


def test_latency_fault_delays_the_answer(http, emulator):
    emulator.inject(JOB_ROUTE, "latency", delay=0.3)
    job_id = create_job(http, emulator).json()["id"]

    started = time.monotonic()
    response = http.get(f"{jobs_url(emulator)}{job_id}/")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_latency_fault_trips_a_read_timeout(http, emulator):
    emulator.inject("GET /api/jobs/", "latency", delay=0.5)

    with pytest.raises(requests.ReadTimeout):
        http.get(jobs_url(emulator), timeout=0.1)


def test_reset_fault_drops_the_connection_before_handling(http, emulator):
    emulator.inject("POST /api/jobs/from-url/", "reset")

    with pytest.raises(requests.ConnectionError):
        create_job(http, emulator)

    assert emulator.state.jobs == {}
    assert create_job(http, emulator).status_code == 201


def test_lost_response_commits_the_job_but_never_answers(http, emulator):
    emulator.inject("POST /api/jobs/from-url/", "lost_response")

    with pytest.raises(requests.ConnectionError):
        create_job(http, emulator)

    assert len(emulator.state.jobs) == 1
    assert http.get(jobs_url(emulator)).json()["count"] == 1
    assert emulator.requests[0].status == 0


def test_truncated_fault_cuts_the_json_of_a_handled_request(http, emulator):
    emulator.inject("POST /api/jobs/from-url/", "truncated")

    response = create_job(http, emulator)

    assert response.status_code == 201
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert len(emulator.state.jobs) == 1


def test_fault_fires_for_the_next_n_calls_only(http, emulator):
    rule = emulator.inject("GET /api/jobs/", "error", times=3)

    statuses = [http.get(jobs_url(emulator)).status_code for _ in range(5)]

    assert statuses == [503, 503, 503, 200, 200]
    assert rule.fired == 3


def test_fault_matches_its_route_only(http, emulator):
    emulator.inject("GET /api/videos/", "error", times=None)

    assert http.get(jobs_url(emulator)).status_code == 200
    assert http.get(f"{emulator.base_url}/api/videos/").status_code == 503


def test_method_wildcard_matches_every_route_of_that_method(http, emulator):
    emulator.inject("POST *", "error", times=None)

    assert http.get(jobs_url(emulator)).status_code == 200
    assert create_job(http, emulator).status_code == 503


def test_probabilistic_fault_is_seeded_and_repeatable():
    def statuses(seed: int) -> list[int]:
        with TensorPixEmulator(seed=seed) as emulator:
            emulator.inject("*", "error", probability=0.5)
            headers = {"Authorization": "Token test-key"}
            return [
                requests.get(f"{emulator.base_url}/api/jobs/", headers=headers).status_code
                for _ in range(20)
            ]

    first = statuses(seed=7)

    assert first == statuses(seed=7)
    assert 503 in first
    assert 200 in first


def test_probability_out_of_range_is_refused(emulator):
    with pytest.raises(ValueError, match="probability"):
        emulator.inject("*", "error", probability=1.5)


def test_unknown_fault_kind_is_refused(emulator):
    with pytest.raises(ValueError, match="unknown fault kind"):
        emulator.inject("*", "explode")


def test_clear_faults_removes_every_rule(http, emulator):
    emulator.inject("*", "error", times=None)

    emulator.clear_faults()

    assert http.get(jobs_url(emulator)).status_code == 200


def test_faults_also_strike_presigned_downloads(http, emulator):
    video_id = emulator.add_video(size=1000)
    url = http.get(f"{emulator.base_url}/api/videos/{video_id}/").json()["file"]
    emulator.inject("GET /storage/{key}", "reset")

    with pytest.raises(requests.ConnectionError):
        requests.get(url)
    assert len(requests.get(url).content) == 1000


# -- request log ------------------------------------------------------------------------


def test_request_log_records_method_path_query_status_and_time(http, emulator):
    before = time.time()
    http.get(jobs_url(emulator), params={"limit": 5})
    requests.get(jobs_url(emulator))
    http.get(f"{jobs_url(emulator)}12345/")

    records = emulator.requests

    assert [(r.method, r.path, r.query, r.status) for r in records] == [
        ("GET", "/api/jobs/", "limit=5", 200),
        ("GET", "/api/jobs/", "", 401),
        ("GET", "/api/jobs/12345/", "", 404),
    ]
    assert records[2].route == JOB_ROUTE
    assert all(before <= record.at <= time.time() for record in records)


def test_clear_requests_empties_the_log(http, emulator):
    http.get(jobs_url(emulator))

    emulator.clear_requests()

    assert emulator.requests == []


def test_request_log_never_holds_the_api_key(http, emulator):
    http.get(jobs_url(emulator))

    assert emulator.api_key not in repr(emulator.requests)
    assert emulator.api_key not in repr(emulator)


def test_unknown_route_is_refused_so_a_typo_cannot_silently_disable_a_fault(emulator):
    with pytest.raises(ValueError, match="unknown route"):
        emulator.inject("GET /api/jobs/{id}", "error")


def test_truncated_download_stops_half_way_under_the_full_length(http, emulator):
    video_id = emulator.add_video(size=300_000)
    url = http.get(f"{emulator.base_url}/api/videos/{video_id}/").json()["file"]
    emulator.inject("GET /storage/{key}", "truncated")

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url)
    assert len(requests.get(url).content) == 300_000


def test_each_answer_is_in_the_log_by_the_time_the_client_has_it(http, emulator):
    for count in range(1, 31):
        http.get(jobs_url(emulator))
        assert len(emulator.requests) == count


def test_error_fault_can_carry_retry_after(http, emulator):
    emulator.inject("GET /api/jobs/", "error", status=503, retry_after=4)

    response = http.get(jobs_url(emulator))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "4"
