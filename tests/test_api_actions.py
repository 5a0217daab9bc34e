"""The API's job actions, through services and polling against the emulator: create,
cancel, refresh, download, archive; TensorPix failures become 502/503, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.models import Job, Video
from django_tensorpix.sync import sync_job, sync_ml_models
from django_tensorpix.tasks import archive_job_output, upload_video
from django_tensorpix.testing import TensorPixEmulator
from tests.strategies import job_payload

pytestmark = pytest.mark.django_db
URL = "https://media.example.com/clip_720p.mp4"


@pytest.fixture
def catalogue(tensorpix_account: TensorPixEmulator) -> list[dict[str, Any]]:
    """The emulator's AI filters, synced."""
    with TensorPixClient.for_account() as client:
        models = [dict(model) for page in client.iter_ml_model_pages() for model in page]
    sync_ml_models(models)
    return models


def remote_job(emulator: TensorPixEmulator, user: Any, *, finish: bool = False) -> Job:
    """A job created at the emulator and synced, owned by ``user``."""
    with TensorPixClient.for_account() as client:
        created = client.create_job_from_url(video_url=URL, ml_models=[1])
        if finish:
            emulator.advance(24 * 3600)
        job = sync_job(client.get_job(created["id"]))
    Job.objects.filter(pk=job.pk).update(user=user)
    job.refresh_from_db()
    return job


def use_media_root(settings: Any, tmp_path: Any) -> None:
    """Uploads and archives go to ``tmp_path`` (the default storage is built at import)."""
    settings.MEDIA_ROOT = str(tmp_path)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }


# -- create ---------------------------------------------------------------------------------


def test_creating_from_a_url_answers_202_with_the_local_job_and_submits_after_commit(
    api: APIClient,
    alice: Any,
    catalogue: Any,
    tensorpix_account: TensorPixEmulator,
    django_capture_on_commit_callbacks: Any,
) -> None:
    name = catalogue[0]["name"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            "/api/tensorpix/jobs/",
            {"video_url": URL, "ml_models": [name], "crf": 20, "preview": True},
            format="json",
        )

    assert response.status_code == 202, response.content
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert body["tensorpix_id"] is None
    assert body["local"]["submission_state"] == SubmissionState.PENDING
    assert body["local"]["user"] == alice.pk
    assert [model["tensorpix_id"] for model in body["ml_models"]] == [catalogue[0]["id"]]
    assert (job.video_url, job.crf, job.preview, job.user) == (URL, 20, True, alice)
    assert callbacks  # the submission task is enqueued when the transaction commits
    assert not [r for r in tensorpix_account.requests if r.method == "POST"]


def test_creating_from_an_uploaded_file_stores_it_for_the_worker(
    api: APIClient, alice: Any, catalogue: Any, settings: Any, tmp_path: Any
) -> None:
    use_media_root(settings, tmp_path)
    upload = SimpleUploadedFile("holiday.mp4", b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)

    response = api.post(
        "/api/tensorpix/jobs/",
        {"file": upload, "ml_models": [str(catalogue[0]["id"])], "qscale": 10},
        format="multipart",
    )

    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.input_video is not None
    assert job.input_video.name == "holiday.mp4"
    assert job.qscale == 10
    assert response.json()["input_video"]["id"] == job.input_video.pk


def test_an_unknown_ml_model_is_a_field_error(
    api: APIClient, catalogue: Any, tensorpix_account: TensorPixEmulator
) -> None:
    response = api.post(
        "/api/tensorpix/jobs/",
        {"video_url": URL, "ml_models": ["No Such Filter"]},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()) == {"ml_models"}
    assert not Job.objects.exists()


# -- cancel ---------------------------------------------------------------------------------


def test_cancel_stops_the_job_at_tensorpix(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/cancel/")

    assert response.status_code == 200, response.content
    assert response.json()["outcome"] == "canceled"
    assert response.json()["job"]["status"] == JobStatus.CANCELED
    assert job.tensorpix_id is not None
    assert tensorpix_account.job_payload(job.tensorpix_id)["status"] == JobStatus.CANCELED


def test_cancel_withdraws_a_job_not_sent_yet(api: APIClient, alice: Any) -> None:
    job = Job.objects.create(user=alice, video_url=URL)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/cancel/")

    assert response.status_code == 200
    assert response.json()["outcome"] == "withdrawn"
    job.refresh_from_db()
    assert job.submission_state == "withdrawn"


def test_cancel_while_the_create_request_may_be_in_flight_is_a_conflict(
    api: APIClient, alice: Any
) -> None:
    job = Job.objects.create(user=alice, video_url=URL, submission_state=SubmissionState.UNCERTAIN)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/cancel/")

    assert response.status_code == 409
    assert "detail" in response.json()


# -- refresh --------------------------------------------------------------------------------


def test_refresh_reads_the_job_from_tensorpix_now(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice)
    assert job.status == JobStatus.IN_QUEUE
    tensorpix_account.advance(24 * 3600)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/refresh/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == JobStatus.FINISHED
    assert response.json()["output_video"]["tensorpix_id"] is not None


def test_refresh_of_a_job_not_submitted_is_a_conflict(api: APIClient, alice: Any) -> None:
    job = Job.objects.create(user=alice, video_url=URL)

    assert api.post(f"/api/tensorpix/jobs/{job.pk}/refresh/").status_code == 409


def test_tensorpix_not_answering_is_a_503_not_a_500(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice)
    tensorpix_account.inject("GET /api/jobs/{id}/", "error", status=503, times=100)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/refresh/")

    assert response.status_code == 503
    assert "test-key" not in response.content.decode()


# -- download and archive -----------------------------------------------------------------


def test_download_gives_a_fresh_url_or_redirects_to_it(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice, finish=True)

    url = api.get(f"/api/tensorpix/jobs/{job.pk}/download/").json()["url"]
    redirect = api.get(f"/api/tensorpix/jobs/{job.pk}/download/?redirect=true")

    assert url.startswith(tensorpix_account.base_url)
    assert redirect.status_code == 302
    assert redirect["Location"].split("?")[0] == url.split("?")[0]


def test_download_of_an_unfinished_job_is_a_conflict(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice)

    assert api.get(f"/api/tensorpix/jobs/{job.pk}/download/").status_code == 409


def test_archive_copies_a_finished_output_in_a_task(
    api: APIClient,
    alice: Any,
    tensorpix_account: TensorPixEmulator,
    settings: Any,
    tmp_path: Any,
) -> None:
    use_media_root(settings, tmp_path)
    job = remote_job(tensorpix_account, alice, finish=True)

    archive_job_output.app.conf.task_always_eager = True  # the task runs in the request
    try:
        response = api.post(f"/api/tensorpix/jobs/{job.pk}/archive/")
    finally:
        archive_job_output.app.conf.task_always_eager = False

    assert response.status_code == 202
    job.refresh_from_db()
    assert job.archived_file
    assert job.output_video is not None
    assert job.archived_file.size == job.output_video.size
    assert api.get(f"/api/tensorpix/jobs/{job.pk}/").json()["local"]["archived_file"]


def test_archive_of_an_unfinished_job_is_a_conflict(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = remote_job(tensorpix_account, alice)

    assert api.post(f"/api/tensorpix/jobs/{job.pk}/archive/").status_code == 409


def test_refresh_of_a_job_tensorpix_no_longer_has_is_a_conflict(
    api: APIClient, alice: Any, tensorpix_account: TensorPixEmulator
) -> None:
    job = sync_job(job_payload(id=987654))  # never existed at the emulator
    Job.objects.filter(pk=job.pk).update(user=alice)

    response = api.post(f"/api/tensorpix/jobs/{job.pk}/refresh/")

    assert response.status_code == 409
    assert "404" in response.json()["detail"]


# -- video upload -----------------------------------------------------------------------------


def test_uploading_a_video_answers_202_and_the_task_uploads_it_after_commit(
    api: APIClient,
    alice: Any,
    bob: Any,
    settings: Any,
    tmp_path: Any,
    tensorpix_account: TensorPixEmulator,
    django_capture_on_commit_callbacks: Any,
) -> None:
    use_media_root(settings, tmp_path)
    upload = SimpleUploadedFile("raw.mp4", b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)

    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            "/api/tensorpix/videos/", {"file": upload, "name": "beach.mp4"}, format="multipart"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["tensorpix_id"], body["name"], body["size"]) == (None, "beach.mp4", 1012)
    assert body["local"]["user"] == alice.pk
    assert not tensorpix_account.requests
    video = Video.objects.get(pk=body["id"])
    assert video.local_file.storage.exists(str(video.local_file.name))

    upload_video(video.pk)  # what the callback enqueued, run here
    assert len(callbacks) == 1
    body = api.get(f"/api/tensorpix/videos/{video.pk}/").json()
    assert body["tensorpix_id"] in tensorpix_account.state.videos
    assert tensorpix_account.state.videos[body["tensorpix_id"]].name == "beach.mp4"

    other = APIClient()
    other.force_authenticate(bob)
    assert other.get(f"/api/tensorpix/videos/{video.pk}/").status_code == 404
    assert other.get("/api/tensorpix/videos/").json()["count"] == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [({}, "file"), ({"file": SimpleUploadedFile("empty.mp4", b"")}, "file")],
)
def test_uploading_without_a_file_or_an_empty_one_is_a_field_error(
    api: APIClient, settings: Any, tmp_path: Any, data: dict[str, Any], field: str
) -> None:
    use_media_root(settings, tmp_path)

    response = api.post("/api/tensorpix/videos/", data, format="multipart")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not Video.objects.exists()
