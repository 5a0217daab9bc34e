from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from django_tensorpix.enums import JobStatus
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video

SECRET = "sk-ADMIN-PAGES-MUST-NOT-SHOW-THIS"


@pytest.fixture
def finished_job(db):
    now = timezone.now()
    model = MLModel.objects.create(
        tensorpix_id=7,
        name="Upscale x2",
        task=1,
        cost_weight=1.0,
        upscale_factor=2,
        fps_boost_factor=1,
        priority=1,
        max_resolution=2_073_600,
    )
    video = Video.objects.create(tensorpix_id=11, name="clip.mp4", created_at=now)
    output = RestoredVideo.objects.create(
        tensorpix_id=21, job_id=31, created_at=now, width=1920, height=1080, owner=3
    )
    job = Job.objects.create(
        tensorpix_id=31,
        status=JobStatus.FINISHED,
        processing_progress=1.0,
        cost_usd=Decimal("1.2500"),
        input_video=video,
        output_video=output,
        started=now,
        finished=now,
    )
    job.ml_models.add(model)
    JobEvent.objects.create(job=job, kind="status", old_value="1", new_value="2")
    return job


@pytest.mark.parametrize("model", [Job, Video, RestoredVideo, MLModel])
def test_changelist_and_change_pages_render_without_the_api_key(admin_client, finished_job, model):
    obj = model.objects.get()
    opts = model._meta
    with override_settings(TENSORPIX={"API_KEY": SECRET}):
        changelist = admin_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        )
        change = admin_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
    assert changelist.status_code == 200
    assert change.status_code == 200
    assert str(obj) in changelist.text
    assert SECRET not in changelist.text
    assert SECRET not in change.text


def test_mirrored_fields_cannot_be_edited_in_the_admin(admin_client, finished_job):
    url = reverse("admin:django_tensorpix_job_change", args=[finished_job.pk])
    page = admin_client.get(url)
    assert 'name="status"' not in page.text
    assert 'name="ml_models"' not in page.text
    admin_client.post(url, {"status": JobStatus.FAILED})
    finished_job.refresh_from_db()
    assert finished_job.status == JobStatus.FINISHED


def test_job_change_page_shows_its_event_history(admin_client, finished_job):
    page = admin_client.get(reverse("admin:django_tensorpix_job_change", args=[finished_job.pk]))
    assert "Job events" in page.text or "job event" in page.text.lower()
    assert page.text.count('<td class="field-new_value">') == 1


def test_objects_are_not_added_by_hand(admin_client, db):
    page = admin_client.get(reverse("admin:django_tensorpix_job_add"))
    assert page.status_code == 403


def test_job_changelist_queries_do_not_grow_with_rows(
    admin_client, finished_job, django_assert_max_num_queries
):
    for number in range(20):
        Job.objects.create(tensorpix_id=1000 + number, status=JobStatus.PROCESSING)
    with django_assert_max_num_queries(12):
        page = admin_client.get(reverse("admin:django_tensorpix_job_changelist"))
    assert page.status_code == 200


def test_an_error_quoting_the_key_shows_redacted_in_the_admin(admin_client, finished_job):
    # The admin shows what the client produced: a server that echoes the key in an error
    # body must not get it onto an admin page through the stored error. (The test above
    # cannot fail: the admin never reads settings.)
    from django_tensorpix.client import TensorPixClient
    from django_tensorpix.conf import Account
    from django_tensorpix.exceptions import NotFound
    from tests.test_client_safety import _start_host

    host = _start_host()
    try:
        host.json(f"/api/jobs/{finished_job.tensorpix_id}/", {"detail": f"bad {SECRET}"}, 404)
        client = TensorPixClient(Account("default", SECRET, host.url), max_retries=0)
        with client, pytest.raises(NotFound) as caught:
            client.get_job(finished_job.tensorpix_id)
    finally:
        host.server.shutdown()
        host.server.server_close()
    Job.objects.filter(pk=finished_job.pk).update(last_sync_error=str(caught.value))

    page = admin_client.get(reverse("admin:django_tensorpix_job_change", args=[finished_job.pk]))

    assert "bad [redacted]" in page.text
    assert SECRET not in page.text
