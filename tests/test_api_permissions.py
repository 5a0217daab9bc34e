"""Who sees and does what: own objects only, staff everything, add_job to create, no anonymous."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authentication import BasicAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from django_tensorpix.api.permissions import IsOwnerOrStaff
from django_tensorpix.api.views import JobViewSet
from django_tensorpix.models import Job, Video
from django_tensorpix.sync import sync_jobs
from tests.strategies import job_payload, restored_video_payload, video_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(alice: Any, bob: Any) -> dict[str, Job]:
    """One finished job each for alice and bob, with their own input and output videos."""
    sync_jobs(
        [
            job_payload(
                id=1,
                input_video=video_payload(id=11),
                output_video=restored_video_payload(id=21, job_id=1),
            ),
            job_payload(
                id=2,
                input_video=video_payload(id=12),
                output_video=restored_video_payload(id=22, job_id=2),
            ),
        ]
    )
    for tensorpix_id, user in ((1, alice), (2, bob)):
        Job.objects.filter(tensorpix_id=tensorpix_id).update(user=user)
        Video.objects.filter(tensorpix_id=tensorpix_id + 10).update(user=user)
    return {"alice": Job.objects.get(tensorpix_id=1), "bob": Job.objects.get(tensorpix_id=2)}


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def urls_of(job: Job) -> list[str]:
    return [
        f"/api/tensorpix/jobs/{job.pk}/",
        f"/api/tensorpix/videos/{job.input_video_id}/",
        f"/api/tensorpix/restored-videos/{job.output_video_id}/",
    ]


def test_users_list_only_their_own_jobs_and_videos(jobs: dict[str, Job], bob: Any) -> None:
    api = client_for(bob)

    for path in ("jobs", "videos", "restored-videos"):
        results = api.get(f"/api/tensorpix/{path}/").json()["results"]
        assert [item["tensorpix_id"] for item in results] == [
            {"jobs": 2, "videos": 12, "restored-videos": 22}[path]
        ], path


def test_a_user_cannot_see_another_users_job_or_videos(jobs: dict[str, Job], bob: Any) -> None:
    api = client_for(bob)

    for url in urls_of(jobs["alice"]):
        response = api.get(url)
        assert response.status_code == 404, url
        assert "tensorpix_id" not in response.json()


@pytest.mark.parametrize(
    ("method", "action"),
    [("post", "cancel"), ("post", "refresh"), ("get", "download"), ("post", "archive")],
)
def test_a_user_cannot_act_on_another_users_job(
    jobs: dict[str, Job], bob: Any, method: str, action: str, tensorpix_account: Any
) -> None:
    tensorpix_account.clear_requests()

    response = getattr(client_for(bob), method)(f"/api/tensorpix/jobs/{jobs['alice'].pk}/{action}/")

    assert response.status_code == 404
    assert tensorpix_account.requests == []  # nothing reached TensorPix


def test_staff_see_everyones_jobs_and_videos(jobs: dict[str, Job], staff: Any) -> None:
    api = client_for(staff)

    assert api.get("/api/tensorpix/jobs/").json()["count"] == 2
    assert api.get("/api/tensorpix/restored-videos/").json()["count"] == 2
    for job in jobs.values():
        for url in urls_of(job):
            assert api.get(url).status_code == 200, url


def test_anonymous_requests_get_403_and_no_data_with_session_authentication(
    jobs: dict[str, Job],
) -> None:
    api = APIClient()

    for url in ["/api/tensorpix/jobs/", "/api/tensorpix/ml-models/", *urls_of(jobs["alice"])]:
        response = api.get(url)
        assert response.status_code == 403, url
        assert set(response.json()) == {"detail"}
    assert (
        api.post("/api/tensorpix/jobs/", {"video_url": "https://x.test/a.mp4"}).status_code == 403
    )


def test_anonymous_requests_get_401_when_the_host_authenticates_by_header(
    jobs: dict[str, Job],
) -> None:
    view = JobViewSet.as_view({"get": "list"}, authentication_classes=[BasicAuthentication])

    response = view(APIRequestFactory().get("/api/tensorpix/jobs/"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")


def test_creating_a_job_needs_the_add_job_permission(bob: Any) -> None:
    response = client_for(bob).post(
        "/api/tensorpix/jobs/",
        {"video_url": "https://media.example.com/clip.mp4", "ml_models": [1]},
        format="json",
    )

    assert response.status_code == 403
    assert not Job.objects.exists()


def test_uploading_a_video_needs_the_add_video_permission(bob: Any) -> None:
    upload = SimpleUploadedFile("clip.mp4", b"x" * 100)

    response = client_for(bob).post("/api/tensorpix/videos/", {"file": upload})

    assert response.status_code == 403
    assert not Video.objects.exists()


def test_anonymous_uploads_get_403_and_store_nothing() -> None:
    upload = SimpleUploadedFile("clip.mp4", b"x" * 100)

    response = APIClient().post("/api/tensorpix/videos/", {"file": upload})

    assert response.status_code == 403
    assert set(response.json()) == {"detail"}
    assert not Video.objects.exists()


def test_ml_models_are_shared_by_every_user(jobs: dict[str, Job], bob: Any) -> None:
    assert client_for(bob).get("/api/tensorpix/ml-models/").json()["count"] == 2


class ReadOnlyStaff(BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user.is_staff)


def test_permission_classes_come_from_settings(
    jobs: dict[str, Job], alice: Any, staff: Any, settings: Any
) -> None:
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "API_PERMISSION_CLASSES": ["tests.test_api_permissions.ReadOnlyStaff"],
    }

    assert client_for(alice).get("/api/tensorpix/jobs/").status_code == 403
    assert client_for(staff).get("/api/tensorpix/jobs/").json()["count"] == 2


def test_a_subclass_can_narrow_who_sees_what(jobs: dict[str, Job], alice: Any) -> None:
    class UnfinishedOnly(IsOwnerOrStaff):
        def filter_queryset(self, request: Any, queryset: Any) -> Any:
            return super().filter_queryset(request, queryset).exclude(status=2)

    class Jobs(JobViewSet):
        permission_classes = (UnfinishedOnly,)

    request = APIRequestFactory().get("/")
    force_authenticate(request, user=alice)
    assert JobViewSet.as_view({"get": "list"})(request).data["count"] == 1

    request = APIRequestFactory().get("/")
    force_authenticate(request, user=alice)
    response = Jobs.as_view({"get": "list"})(request)

    assert response.status_code == 200
    assert response.data["count"] == 0


@pytest.fixture
def empty_cache() -> Any:
    """DRF's throttles count in the default cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


def test_creating_jobs_has_its_own_throttle_scope(alice: Any, bob: Any, empty_cache: Any) -> None:
    api = client_for(alice)
    invalid = {"video_url": "ftp://x.test/a.mp4", "ml_models": [1]}

    # tests.settings: "tensorpix_job_create": "5/minute". Refused requests count too.
    answers = [api.post("/api/tensorpix/jobs/", invalid, format="json") for _ in range(6)]

    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert api.get("/api/tensorpix/jobs/").status_code == 200  # reading is not throttled


def test_uploading_videos_has_its_own_throttle_scope(alice: Any, empty_cache: Any) -> None:
    api = client_for(alice)

    # tests.settings: "tensorpix_video_upload": "5/minute". Refused requests count too.
    answers = [api.post("/api/tensorpix/videos/", {"name": "no file"}) for _ in range(6)]

    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert not Video.objects.exists()
    # Another scope, another count: creating a job is still allowed.
    job = api.post("/api/tensorpix/jobs/", {"video_url": "ftp://x.test/a.mp4"}, format="json")
    assert job.status_code == 400


def test_without_a_rate_for_the_scope_creating_is_not_throttled(
    alice: Any, settings: Any, empty_cache: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    api = client_for(alice)
    invalid = {"video_url": "ftp://x.test/a.mp4", "ml_models": [1]}

    answers = [api.post("/api/tensorpix/jobs/", invalid, format="json") for _ in range(7)]

    assert {answer.status_code for answer in answers} == {400}
