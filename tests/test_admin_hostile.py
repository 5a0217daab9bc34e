"""The admin under attack: every action posted without its permission, and without CSRF.

tests/test_admin.py and tests/test_admin_actions.py check that actions and buttons are
offered by permission and refuse some of them; this posts every action, and every button
that acts, as a staff user who may only view, and as a superuser whose request lacks the
CSRF token. Each must change nothing here and send nothing to TensorPix.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_tensorpix.models import Job, Video
from tests.test_services import emulator, finish, submitted_url_job

__all__ = ["emulator"]  # the fixture, shared with the services' tests

pytestmark = pytest.mark.django_db
JOB_ACTIONS = [
    "refresh_jobs",
    "cancel_jobs",
    "archive_outputs",
    "delete_remote_outputs",
    "retry_submissions",
]


@pytest.fixture
def finished(emulator: Any) -> Job:
    job = finish(emulator, submitted_url_job(emulator))
    emulator.clear_requests()
    return job


def snapshot() -> list[Any]:
    return [
        list(Job.objects.order_by("pk").values()),
        list(Video.objects.order_by("pk").values()),
    ]


def viewer() -> Client:
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_job", "view_video"]))
    client = Client()
    client.force_login(user)
    return client


def superuser_without_csrf() -> Client:
    user = User.objects.create_superuser("root", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def posts(finished: Job) -> list[tuple[str, dict[str, Any]]]:
    """Every POST that acts at TensorPix or writes: the actions, then the buttons."""
    jobs = reverse("admin:django_tensorpix_job_changelist")
    videos = reverse("admin:django_tensorpix_video_changelist")
    chosen = {"_selected_action": [finished.pk], "post": "yes"}
    return [
        *[(jobs, {"action": action, **chosen}) for action in JOB_ACTIONS],
        (
            videos,
            {
                "action": "delete_remote_videos",
                "_selected_action": [finished.input_video_id],
                "post": "yes",
            },
        ),
        (reverse("admin:django_tensorpix_job_refresh", args=[finished.pk]), {}),
        (reverse("admin:django_tensorpix_job_sync"), {}),
        (
            reverse("admin:django_tensorpix_job_enhance"),
            {"video_url": "https://media.example.com/x.mp4", "ml_models": [1]},
        ),
    ]


@pytest.mark.parametrize("who", ["viewer", "no csrf"])
def test_every_acting_post_is_refused_and_changes_nothing(
    emulator: Any, finished: Job, who: str
) -> None:
    client = viewer() if who == "viewer" else superuser_without_csrf()
    before = snapshot()

    for path, data in posts(finished):
        response = client.post(path, data)

        assert response.status_code in (200, 302, 403), (path, data, response.status_code)
        if who == "no csrf":
            assert response.status_code == 403, (path, data)
        assert emulator.requests == [], (path, data)
        assert snapshot() == before, (path, data)


def test_the_download_redirect_needs_view_permission(emulator: Any, finished: Job) -> None:
    user = User.objects.create_user("nobody", is_staff=True)
    client = Client()
    client.force_login(user)

    response = client.get(reverse("admin:django_tensorpix_job_download", args=[finished.pk]))

    assert response.status_code in (302, 403)
    assert "X-Signature" not in response.get("Location", "")
    assert emulator.requests == []
