"""Hostile requests to the REST API: a clear 4xx, nothing written, nothing sent to TensorPix.

tests/test_api_serializers.py checks each option's bounds on the serializer and
tests/test_api_permissions.py other users' jobs; these go through HTTP end to end with
what an attacker sends: wrong JSON types, bodies that are not objects, huge bodies,
malformed JSON and multipart, ids that do not exist or are not numbers, and fields a
client must not set (owner, TensorPix id, status).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import SubmissionState
from django_tensorpix.models import Job, JobEvent, Video
from django_tensorpix.sync import sync_ml_models
from django_tensorpix.testing import TensorPixEmulator

pytestmark = pytest.mark.django_db

JOBS = "/api/tensorpix/jobs/"
URL = "https://media.example.com/clip_720p.mp4"


@pytest.fixture(autouse=True)
def quiet(tensorpix_account: TensorPixEmulator) -> TensorPixEmulator:
    """The catalogue synced, the request log and the create throttle's counts empty."""
    with TensorPixClient.for_account() as client:
        sync_ml_models([dict(model) for page in client.iter_ml_model_pages() for model in page])
    tensorpix_account.clear_requests()
    cache.clear()
    return tensorpix_account


def assert_nothing_changed(emulator: TensorPixEmulator) -> None:
    assert not Job.objects.exists()
    assert not Video.objects.exists()
    assert not JobEvent.objects.exists()
    assert [r for r in emulator.requests if r.method != "GET"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"video_url": 123, "ml_models": [1]},
        {"video_url": [URL], "ml_models": [1]},
        {"video_url": {"href": URL}, "ml_models": [1]},
        {"video_url": "file:///etc/passwd", "ml_models": [1]},
        {"video_url": "javascript:alert(document.cookie)", "ml_models": [1]},
        {"video_url": "https://e.com/" + "a" * 2_000_000, "ml_models": [1]},
        {"video_url": URL, "ml_models": {"id": 1}},
        {"video_url": URL, "ml_models": [[1]]},
        {"video_url": URL, "ml_models": [999_999]},
        {"video_url": URL, "ml_models": ["x" * 100_000]},
        {"video_url": URL, "ml_models": [1], "crf": "high"},
        {"video_url": URL, "ml_models": [1], "crf": 10**30},
        {"video_url": URL, "ml_models": [1], "grain": [0.5]},
        {"video_url": URL, "ml_models": [1], "codec": "x" * 1_000_000},
        {"video_url": URL, "ml_models": [1], "preview": {"yes": True}},
        {"video_url": URL, "ml_models": [1], "start_frame": -(2**70)},
        [URL, [1]],
        "https://media.example.com/clip_720p.mp4",
        None,
        {},
    ],
    ids=lambda body: repr(body)[:40],
)
def test_a_bad_create_body_is_a_400_that_changes_nothing(
    api: APIClient, quiet: TensorPixEmulator, body: Any
) -> None:
    response = api.post(JOBS, body, format="json")

    assert response.status_code == 400, response.content[:500]
    assert len(response.content) < 20_000  # no huge value echoed back
    assert_nothing_changed(quiet)


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/json", b'{"video_url": "https://media.example.com/a.mp4", "ml'),
        ("application/json", b"\xff\xfe\x00garbage"),
        ("application/json", b'{"ml_models": [1], ' * 1000),
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data"),
        ("multipart/form-data; boundary=abc", b"--xyz\r\nnot a part\r\n--xyz--\r\n"),
        (
            "multipart/form-data; boundary=abc",
            b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
            b"truncated before the closing boundary",
        ),
        ("text/plain", b"video_url=https://media.example.com/a.mp4"),
        ("application/xml", b"<job><video_url>x</video_url></job>"),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_malformed_bodies_are_a_4xx_that_changes_nothing(
    api: APIClient, quiet: TensorPixEmulator, content_type: str, data: bytes
) -> None:
    response = api.generic("POST", JOBS, data, content_type=content_type)

    assert 400 <= response.status_code < 500, response.content[:500]
    assert_nothing_changed(quiet)


def test_a_body_beyond_djangos_upload_limit_is_refused(
    api: APIClient, quiet: TensorPixEmulator, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    padding = "a" * (2 * 1024 * 1024)

    response = api.generic(
        "POST",
        JOBS,
        f"video_url={URL}&ml_models=1&description={padding}",
        content_type="application/x-www-form-urlencoded",
    )

    assert 400 <= response.status_code < 500
    assert_nothing_changed(quiet)


@pytest.mark.parametrize("job_id", ["999999", "0", "-1", "abc", "1.5", str(2**80), "%00"])
@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("get", ""),
        ("post", "cancel/"),
        ("post", "refresh/"),
        ("get", "download/"),
        ("post", "archive/"),
    ],
)
def test_ids_that_name_no_job_are_404_and_reach_nothing(
    api: APIClient, quiet: TensorPixEmulator, job_id: str, method: str, action: str
) -> None:
    response = getattr(api, method)(f"{JOBS}{job_id}/{action}")

    assert response.status_code == 404
    assert quiet.requests == []
    assert_nothing_changed(quiet)


def test_fields_a_client_must_not_set_are_ignored(
    api: APIClient, quiet: TensorPixEmulator, alice: Any, bob: Any
) -> None:
    response = api.post(
        JOBS,
        {
            "video_url": URL,
            "ml_models": [1],
            "user": bob.pk,
            "tensorpix_id": 4242,
            "status": 2,
            "submission_state": SubmissionState.SUBMITTED,
            "remote_data": {"x": 1},
            "account": "other",
        },
        format="json",
    )

    assert response.status_code in (202, 400), response.content
    if response.status_code == 202:
        job = Job.objects.get()
        assert (job.user, job.tensorpix_id, job.status) == (alice, None, None)
        assert job.submission_state == SubmissionState.PENDING
        assert job.account == "default"
        assert job.remote_data in ({}, None)
    assert [r for r in quiet.requests if r.method != "GET"] == []
