"""The API's read endpoints: listing, pagination, filtering, ordering, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from django_tensorpix.enums import SubmissionState
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video
from django_tensorpix.sync import sync_jobs, sync_ml_models
from tests.strategies import ML_MODEL, job_payload, page_of_jobs, processing_job_payload

pytestmark = pytest.mark.django_db


def own(user: Any, payloads: list[dict[str, Any]]) -> None:
    """Sync ``payloads`` and give the jobs and their input videos to ``user``."""
    sync_jobs(payloads)
    ids = [payload["id"] for payload in payloads]
    Job.objects.filter(tensorpix_id__in=ids).update(user=user)
    Video.objects.filter(jobs__tensorpix_id__in=ids).update(user=user)


def queries_to_list(api: APIClient, path: str) -> tuple[int, dict[str, Any]]:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path)
    assert response.status_code == 200
    return len(queries), response.json()


def test_listing_100_jobs_costs_the_same_queries_as_listing_10(api: APIClient, alice: Any) -> None:
    own(alice, page_of_jobs(10, first_id=1000))
    ten, body = queries_to_list(api, "/api/tensorpix/jobs/?limit=100")
    assert len(body["results"]) == 10

    own(alice, page_of_jobs(90, first_id=5000))
    hundred, body = queries_to_list(api, "/api/tensorpix/jobs/?limit=100")

    assert len(body["results"]) == 100
    assert all(job["output_video"]["local"]["job"] == job["id"] for job in body["results"])
    assert all(len(job["ml_models"]) == 2 for job in body["results"])
    assert hundred == ten
    assert ten == 3  # count, jobs with their videos, ML models


def test_detail_and_the_other_lists_cost_a_fixed_number_of_queries(
    api: APIClient, alice: Any
) -> None:
    own(alice, page_of_jobs(3))
    counts = {}
    for path in ("videos", "restored-videos", "ml-models"):
        counts[path] = queries_to_list(api, f"/api/tensorpix/{path}/")[0]
    own(alice, page_of_jobs(30, first_id=7000))

    for path, count in counts.items():
        assert queries_to_list(api, f"/api/tensorpix/{path}/")[0] == count, path
    job = Job.objects.first()
    assert job is not None
    assert queries_to_list(api, f"/api/tensorpix/jobs/{job.pk}/")[0] <= 4


def test_lists_use_the_hosts_pagination(api: APIClient, alice: Any) -> None:
    own(alice, page_of_jobs(25))

    body = api.get("/api/tensorpix/jobs/").json()

    assert body["count"] == 25
    assert len(body["results"]) == 20  # tests.settings: LimitOffsetPagination, PAGE_SIZE 20
    assert "offset=20" in body["next"]


def test_every_read_endpoint_answers(api: APIClient, alice: Any) -> None:
    own(alice, [job_payload()])
    job = Job.objects.get()
    assert job.input_video is not None
    assert job.output_video is not None
    model = MLModel.objects.get(tensorpix_id=7)

    for path in (
        "",
        "jobs/",
        f"jobs/{job.pk}/",
        "videos/",
        f"videos/{job.input_video.pk}/",
        "restored-videos/",
        f"restored-videos/{job.output_video.pk}/",
        "ml-models/",
        f"ml-models/{model.pk}/",
    ):
        assert api.get(f"/api/tensorpix/{path}").status_code == 200, path


def test_jobs_have_no_delete_nor_update(api: APIClient, alice: Any) -> None:
    own(alice, [job_payload()])
    job = Job.objects.get()

    for method in ("delete", "put", "patch"):
        response = getattr(api, method)(f"/api/tensorpix/jobs/{job.pk}/")
        assert response.status_code == 405, method
    assert Job.objects.filter(pk=job.pk).exists()


# -- filtering and ordering ------------------------------------------------------------------


def ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {job["tensorpix_id"] for job in response.json()["results"]}


@pytest.fixture
def mixed_jobs(alice: Any) -> None:
    sync_ml_models([{**ML_MODEL, "id": 9, "name": "Stabilize", "task": 13}])
    own(
        alice,
        [
            job_payload(id=1, started="2025-07-01T10:00:00Z"),
            processing_job_payload(id=2, started="2025-07-02T10:00:00Z"),
            processing_job_payload(
                id=3,
                preview=True,
                started="2025-07-03T10:00:00Z",
                ml_models=[{**ML_MODEL, "id": 9, "name": "Stabilize", "task": 13}],
            ),
        ],
    )
    Job.objects.create(user=alice, video_url="https://x.test/a.mp4")


def test_jobs_filter_by_status(api: APIClient, mixed_jobs: None) -> None:
    assert ids(api.get("/api/tensorpix/jobs/?status=1")) == {2, 3}
    assert ids(api.get("/api/tensorpix/jobs/?status=2&status=1")) == {1, 2, 3}
    assert api.get("/api/tensorpix/jobs/?status=5").status_code == 400


def test_jobs_filter_by_submission_state(api: APIClient, mixed_jobs: None) -> None:
    assert ids(api.get(f"/api/tensorpix/jobs/?submission_state={SubmissionState.PENDING}")) == {
        None
    }


def test_jobs_filter_by_ml_model_and_preview(api: APIClient, mixed_jobs: None) -> None:
    assert ids(api.get("/api/tensorpix/jobs/?ml_model=9")) == {3}
    assert ids(api.get("/api/tensorpix/jobs/?ml_model=7")) == {1, 2}
    assert ids(api.get("/api/tensorpix/jobs/?preview=true")) == {3}


def test_jobs_filter_by_started_and_finished_ranges(api: APIClient, mixed_jobs: None) -> None:
    after = "started_after=2025-07-02T00:00:00Z"
    assert ids(api.get(f"/api/tensorpix/jobs/?{after}")) == {2, 3}
    before = "started_before=2025-07-02T12:00:00%2B02:00"
    assert ids(api.get(f"/api/tensorpix/jobs/?{after}&{before}")) == {2}
    assert ids(api.get("/api/tensorpix/jobs/?finished_after=2025-07-01T00:00:00Z")) == {1}
    assert api.get("/api/tensorpix/jobs/?started_after=yesterday").status_code == 400


def test_jobs_are_ordered_as_asked(api: APIClient, mixed_jobs: None) -> None:
    def order(query: str) -> list[int | None]:
        return [job["tensorpix_id"] for job in api.get(query).json()["results"]]

    assert order("/api/tensorpix/jobs/?ordering=started&status=1&status=2") == [1, 2, 3]
    assert order("/api/tensorpix/jobs/?ordering=-started&status=1&status=2") == [3, 2, 1]
    # Default: newest local row first.
    assert order("/api/tensorpix/jobs/")[0] is None


def test_ml_models_filter_by_task(api: APIClient, mixed_jobs: None) -> None:
    response = api.get("/api/tensorpix/ml-models/?task=13")

    assert [model["tensorpix_id"] for model in response.json()["results"]] == [9]


def test_videos_and_outputs_filter(api: APIClient, alice: Any, mixed_jobs: None) -> None:
    Video.objects.create(user=alice, name="local.mp4")
    uploaded = api.get("/api/tensorpix/videos/?uploaded=false").json()["results"]
    assert [video["name"] for video in uploaded] == ["local.mp4"]
    RestoredVideo.objects.update(deleted="2025-07-05T00:00:00Z")
    assert api.get("/api/tensorpix/restored-videos/?deleted=false").json()["count"] == 0
    assert api.get("/api/tensorpix/restored-videos/?deleted=true").json()["count"] == 1


def test_a_range_with_an_offset_postgresql_refuses_is_compared_in_utc(
    api: APIClient, mixed_jobs: None
) -> None:
    """Python parses ``-18:54``; PostgreSQL refused it (a 500 found by schemathesis)."""
    query = "started_after=2025-07-01T15:00:00-18:54"

    assert ids(api.get(f"/api/tensorpix/jobs/?{query}")) == {2, 3}  # after 07-02 09:54Z


def test_id_filters_take_whole_numbers_only(api: APIClient, mixed_jobs: None) -> None:
    assert ids(api.get("/api/tensorpix/jobs/?tensorpix_id=2")) == {2}
    assert api.get("/api/tensorpix/jobs/?tensorpix_id=2.5").status_code == 400
    assert api.get("/api/tensorpix/jobs/?ml_model=9.5").status_code == 400
    assert api.get("/api/tensorpix/videos/?tensorpix_id=31.2").status_code == 400
