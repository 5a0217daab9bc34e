"""The admin's actions and pages that act at TensorPix, against the emulator over loopback.

Each goes through django_tensorpix.services; these tests check what the admin adds:
permissions, confirmation before spending Credits or deleting data, pluralised messages
naming each job, and the enhance page's validation.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from django_tensorpix import services
from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.models import Job, MLModel, RestoredVideo
from tests.test_services import URL, emulator, finish, submitted_url_job

__all__ = ["emulator"]  # the fixture, shared with the services' tests

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:django_tensorpix_job_changelist")
DELETE_ROUTE = "DELETE /api/jobs/{id}/"


def client_with(*codenames: str) -> Client:
    user = User.objects.create_user("staff-" + "-".join(codenames), is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator() -> Client:
    return client_with("view_job", "change_job", "add_job")


def act(client: Client, action: str, jobs: list[Job], *, confirmed: bool = True) -> Any:
    data: dict[str, Any] = {"action": action, "_selected_action": [job.pk for job in jobs]}
    if confirmed:
        data["post"] = "yes"
    return client.post(CHANGELIST, data, follow=confirmed)


def said(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def requests_to(emulator: Any, route: str) -> int:
    return sum(1 for record in emulator.requests if record.route == route)


def test_cancel_asks_first_then_cancels_and_says_so_per_job(emulator, operator):
    finished = finish(emulator, submitted_url_job(emulator))
    first, second = submitted_url_job(emulator), submitted_url_job(emulator)
    page = act(operator, "cancel_jobs", [first, second, finished], confirmed=False)
    assert page.status_code == 200
    assert "Cancel jobs?" in page.text
    assert "2 jobs" in page.text
    assert "1 other selected job cannot take this action" in page.text
    assert page.text.count('type="hidden" name="_selected_action"') == 3
    assert requests_to(emulator, DELETE_ROUTE) == 0

    response = act(operator, "cancel_jobs", [first, second, finished])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == JobStatus.CANCELED
    assert said(response) == [
        f"Canceled: 2 jobs ({second}, {first}).",  # the changelist's order, newest first
        f"Not canceled, not active or in flight: 1 job ({finished}).",
    ]


def test_cancel_that_tensorpix_cannot_do_now_is_a_warning(emulator, operator):
    job = submitted_url_job(emulator)
    emulator.inject(DELETE_ROUTE, "error", status=500)
    response = act(operator, "cancel_jobs", [job])
    (message,) = get_messages(response.wsgi_request)
    assert message.level_tag == "warning"
    assert str(message).startswith("Still running, could not be stopped now")
    job.refresh_from_db()
    assert job.is_active


def test_delete_remote_output_asks_first_then_deletes_keeping_the_rows(emulator, operator):
    job = finish(emulator, submitted_url_job(emulator))
    page = act(operator, "delete_remote_outputs", [job], confirmed=False)
    assert "cannot be downloaded again" in page.text
    assert RestoredVideo.objects.get().deleted is None
    response = act(operator, "delete_remote_outputs", [job])
    assert said(response) == [f"Output deleted at TensorPix: 1 job ({job})."]
    assert RestoredVideo.objects.get().deleted is not None
    assert Job.objects.filter(pk=job.pk).exists()


def test_archive_inline_copies_the_output(emulator, operator, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "ADMIN_RUN_INLINE": True}
    job = finish(emulator, submitted_url_job(emulator))
    pending = submitted_url_job(emulator)
    response = act(operator, "archive_outputs", [job, pending])
    job.refresh_from_db()
    assert job.archived_file
    assert said(response) == [
        f"Archived: 1 job ({job}).",
        f"Not archived, no output or already archived: 1 job ({pending}).",
    ]


def test_retry_asks_first_since_it_spends_credits(emulator, operator):
    rejected = services.enhance_from_url(URL, [1])
    Job.objects.filter(pk=rejected.pk).update(
        submission_state=SubmissionState.REJECTED, last_submission_error="Not enough credits."
    )
    page = act(operator, "retry_submissions", [rejected], confirmed=False)
    assert "spends Credits" in page.text
    response = act(operator, "retry_submissions", [rejected])
    rejected.refresh_from_db()
    assert rejected.submission_state == SubmissionState.PENDING
    assert said(response) == [f"Submission retried: 1 job ({rejected})."]


def test_retry_needs_the_add_permission(emulator):
    rejected = services.enhance_from_url(URL, [1])
    Job.objects.filter(pk=rejected.pk).update(submission_state=SubmissionState.REJECTED)
    act(client_with("view_job", "change_job"), "retry_submissions", [rejected])
    rejected.refresh_from_db()
    assert rejected.submission_state == SubmissionState.REJECTED


def test_download_redirects_to_a_fresh_url(emulator, operator):
    job = finish(emulator, submitted_url_job(emulator))
    response = operator.get(reverse("admin:django_tensorpix_job_download", args=[job.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(emulator.base_url)
    unfinished = submitted_url_job(emulator)
    response = operator.get(reverse("admin:django_tensorpix_job_download", args=[unfinished.pk]))
    assert response["Location"] == reverse(
        "admin:django_tensorpix_job_change", args=[unfinished.pk]
    )
    assert said(response)[0].startswith("No download link:")


# The enhance page.

ENHANCE = reverse("admin:django_tensorpix_job_enhance")


@pytest.fixture
def catalogue(emulator: Any) -> list[MLModel]:
    return services.resolve_ml_models([1])  # syncs the emulator's catalogue


def test_enhance_page_groups_models_by_task_and_shows_bounds(catalogue, operator):
    page = operator.get(ENHANCE)
    assert page.status_code == 200
    assert "Super Resolution" in page.text
    assert "From 0 to 51." in page.text  # crf
    assert 'name="crf"' in page.text
    assert 'max="51"' in page.text
    assert "From 0 to 2147483647." in page.text  # start_frame
    assert "Files only" in page.text  # qscale


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"crf": "52"}, "crf", "51"),
        ({"video_url": "ftp://example.com/x.mp4"}, "video_url", "valid URL"),
        ({"qscale": "5"}, "qscale", ""),
        ({"crf": "52", "video_url": ""}, "crf", "51"),  # shown with the source's error
        ({"video_url": ""}, "__all__", "either a video URL or a file"),
        ({"ml_models": []}, "ml_models", "required"),
    ],
)
def test_enhance_page_validates_before_submitting(catalogue, operator, data, field, words):
    form = {"video_url": URL, "ml_models": [catalogue[0].pk], "account": "default", **data}
    page = operator.post(ENHANCE, form)
    assert page.status_code == 200
    errors = page.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not Job.objects.exists()


def test_enhance_from_a_url_creates_the_job_and_opens_it(catalogue, operator):
    form = {"video_url": URL, "ml_models": [catalogue[0].pk], "account": "default", "crf": "20"}
    response = operator.post(ENHANCE, form)
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:django_tensorpix_job_change", args=[job.pk])
    assert job.video_url == URL
    assert job.crf == 20
    assert list(job.ml_models.all()) == catalogue
    assert job.submission_state == SubmissionState.PENDING


def test_enhance_a_file(catalogue, operator):
    upload = SimpleUploadedFile("family.mp4", b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    form = {"file": upload, "ml_models": [catalogue[0].pk], "account": "default", "qscale": "9"}
    response = operator.post(ENHANCE, form)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.input_video is not None
    assert job.input_video.name == "family.mp4"
    assert job.qscale == 9


def test_enhance_needs_the_add_permission(catalogue):
    client = client_with("view_job", "change_job")
    assert client.get(ENHANCE).status_code == 403
    form = {"video_url": URL, "ml_models": [catalogue[0].pk], "account": "default"}
    assert client.post(ENHANCE, form).status_code == 403
    assert not Job.objects.exists()


# Refresh and sync: the poller's refresh_job and the sync_all task.


def test_refresh_action_polls_each_job_now(emulator, operator):
    job = submitted_url_job(emulator)
    unsent = services.enhance_from_url(URL, [1])
    emulator.advance(3600)
    response = act(operator, "refresh_jobs", [job, unsent])
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED
    assert said(response) == [
        f"Refreshed, now Finished: 1 job ({job}).",
        f"Not refreshed, not at TensorPix yet: 1 job ({unsent}).",
    ]


def test_refresh_button_on_the_job_page(emulator, operator):
    job = submitted_url_job(emulator)
    emulator.advance(3600)
    url = reverse("admin:django_tensorpix_job_refresh", args=[job.pk])
    assert operator.get(url).status_code == 405  # changes state: POST only
    response = operator.post(url)
    assert response["Location"] == reverse("admin:django_tensorpix_job_change", args=[job.pk])
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED


def test_sync_button_runs_the_full_sync_inline_and_reports(emulator, operator, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "ADMIN_RUN_INLINE": True}
    emulator.seed_jobs(3)
    sync = reverse("admin:django_tensorpix_job_sync")
    page = operator.get(sync)
    assert "runs now, in this request" in page.text
    response = operator.post(sync, follow=True)
    assert Job.objects.count() == 3
    (message,) = said(response)
    assert message.startswith("Synced from TensorPix: account default: ")
    assert "3 jobs" in message


def test_sync_button_needs_the_change_permission(emulator):
    client = client_with("view_job", "add_job")
    sync = reverse("admin:django_tensorpix_job_sync")
    assert client.get(sync).status_code == 403
    assert client.post(sync).status_code == 403


def test_delete_uploaded_videos_at_tensorpix_asks_first_and_keeps_rows(emulator, tmp_path):
    source = tmp_path / "family.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 1000)
    job = services.submit_job(services.enhance_file(str(source), [1]))
    video = job.input_video
    assert video is not None
    assert video.tensorpix_id is not None
    client = client_with("view_video", "change_video")
    changelist = reverse("admin:django_tensorpix_video_changelist")
    data = {"action": "delete_remote_videos", "_selected_action": [video.pk]}
    page = client.post(changelist, data)
    assert "Delete videos at TensorPix?" in page.text
    assert "1 video" in page.text
    assert len(emulator.state.videos) == 1
    response = client.post(changelist, {**data, "post": "yes"}, follow=True)
    assert said(response) == [f"Deleted at TensorPix: 1 video ({video})."]
    video.refresh_from_db()
    assert video.remote_deleted_at is not None
    viewer = client_with("view_video")
    assert "delete_remote_videos" not in viewer.get(changelist).text
