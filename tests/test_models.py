"""Models: enums, constraints, querysets, columns that must hold TensorPix's real values."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from django_tensorpix.enums import JobEventKind, JobStatus, SubmissionState
from django_tensorpix.models import (
    Job,
    JobEvent,
    MLModel,
    RestoredVideo,
    Video,
    archive_storage,
    archive_upload_to,
)

NOW = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [(0, False), (1, False), (2, True), (-1, True), (-2, True), (7, False), (None, False)],
)
def test_only_finished_failed_and_canceled_are_terminal(status: int | None, terminal: bool) -> None:
    assert JobStatus.value_is_terminal(status) is terminal


def test_status_members_know_whether_they_are_terminal() -> None:
    assert JobStatus.FINISHED.is_terminal
    assert not JobStatus.PROCESSING.is_terminal


@pytest.mark.django_db
def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "django_tensorpix", "--check", "--dry-run", stdout=io.StringIO())


@pytest.mark.django_db
def test_unsubmitted_jobs_and_videos_may_share_a_null_tensorpix_id() -> None:
    Job.objects.create()
    Job.objects.create()
    Video.objects.create()
    Video.objects.create()

    assert Job.objects.filter(tensorpix_id__isnull=True).count() == 2
    assert Video.objects.filter(tensorpix_id__isnull=True).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Job, Video])
def test_one_row_per_account_and_tensorpix_id(model: Any) -> None:
    model.objects.create(tensorpix_id=5)
    model.objects.create(tensorpix_id=5, account="studio")

    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(tensorpix_id=5)


@pytest.mark.django_db
def test_columns_hold_tensorpix_extremes() -> None:
    url = "https://storage.example.com/v/1?X-Amz-Signature=" + "f" * 3000
    video = RestoredVideo.objects.create(
        tensorpix_id=2**63 - 1,
        created_at=NOW,
        width=8192,
        height=8192,
        owner=2**63 - 1,
        bitrate=2**63 - 1,
        size=-(2**63),
        file=url,
        preview_videos={"before_video": url, "after_video": None},
    )
    job = Job.objects.create(tensorpix_id=1, cost_usd="-999999.9999", output_video=video)
    model = MLModel.objects.create(
        tensorpix_id=1,
        name="x",
        task=99,
        cost_weight=1.0,
        upscale_factor=1,
        fps_boost_factor=1,
        priority=1,
        max_resolution=2**40,
    )

    video.refresh_from_db()
    job.refresh_from_db()
    model.refresh_from_db()
    assert (video.bitrate, video.size, video.file) == (2**63 - 1, -(2**63), url)
    assert video.before_video == url
    assert video.after_video is None
    assert str(job.cost_usd) == "-999999.9999"
    assert model.task == 99


@pytest.mark.django_db
def test_nullable_text_keeps_null_apart_from_empty() -> None:
    Video.objects.create(tensorpix_id=1, file=None, codec_id="")

    video = Video.objects.get()
    assert video.file is None
    assert video.codec_id == ""


def make_job(**fields: Any) -> Job:
    defaults: dict[str, Any] = {"tensorpix_id": Job.objects.count() + 1, "status": 1}
    return Job.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_active_finished_failed_and_canceled_querysets() -> None:
    queued = make_job(status=0)
    processing = make_job(status=1)
    unknown = make_job(status=7)
    finished = make_job(status=2)
    failed = make_job(status=-1)
    canceled = make_job(status=-2)
    make_job(tensorpix_id=None, status=None)

    assert set(Job.objects.active()) == {queued, processing, unknown}
    assert list(Job.objects.finished()) == [finished]
    assert list(Job.objects.failed()) == [failed]
    assert list(Job.objects.canceled()) == [canceled]


@pytest.mark.django_db
def test_due_for_poll_skips_future_polls_leased_and_missing_jobs() -> None:
    never_polled = make_job()
    due = make_job(next_poll_at=NOW - dt.timedelta(seconds=1))
    make_job(next_poll_at=NOW + dt.timedelta(seconds=1))
    make_job(poll_lease_until=NOW + dt.timedelta(minutes=1))
    expired_lease = make_job(next_poll_at=NOW, poll_lease_until=NOW - dt.timedelta(seconds=1))
    make_job(missing_remote=True)
    make_job(status=2)

    assert set(Job.objects.due_for_poll(NOW)) == {never_polled, due, expired_lease}


@pytest.mark.django_db
def test_awaiting_submission_lists_jobs_on_their_way_to_tensorpix() -> None:
    pending = make_job(tensorpix_id=None, submission_state=SubmissionState.PENDING)
    uncertain = make_job(tensorpix_id=None, submission_state=SubmissionState.UNCERTAIN)
    make_job(submission_state=SubmissionState.SUBMITTED)
    make_job(tensorpix_id=None, submission_state=SubmissionState.REJECTED)

    assert set(Job.objects.awaiting_submission()) == {pending, uncertain}


def test_is_active_treats_an_unknown_status_as_active() -> None:
    assert Job(tensorpix_id=1, status=7).is_active
    assert not Job(tensorpix_id=1, status=2).is_active
    assert not Job(tensorpix_id=None, status=None).is_active


def test_requested_options_leave_out_what_was_not_asked() -> None:
    job = Job(crf=18, container="mkv", target_fps=60.0, preview=False, codec="", grain=None)

    assert job.requested_options() == {
        "crf": 18,
        "container": "mkv",
        "target_fps": 60.0,
        "preview": False,
    }


def test_archive_storage_and_path_come_from_settings(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    settings.TENSORPIX = {**settings.TENSORPIX, "ARCHIVE_STORAGE": "archive"}
    settings.TENSORPIX = {**settings.TENSORPIX, "ARCHIVE_UPLOAD_TO": "out/%Y/"}

    assert type(archive_storage()).__name__ == "InMemoryStorage"
    before = timezone.now()
    path = archive_upload_to(Job(), "clip.mp4")
    after = timezone.now()
    # Either side of a new year's midnight, not the wall clock at assertion time.
    assert path in {f"out/{before:%Y}/clip.mp4", f"out/{after:%Y}/clip.mp4"}


def test_archived_file_field_defers_its_storage_to_settings() -> None:
    field = Job._meta.get_field("archived_file")

    assert field._storage_callable is archive_storage  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_events_are_ordered_by_time_and_deleted_with_their_job() -> None:
    job = make_job()
    later = JobEvent.objects.create(job=job, kind="status", old_value="0", new_value="1")
    earlier = JobEvent.objects.create(
        job=job, kind="status", new_value="0", at=timezone.now() - dt.timedelta(minutes=1)
    )

    assert list(job.events.all()) == [earlier, later]
    assert str(later) == "Status changed: In Queue → Processing"
    job.delete()
    assert not JobEvent.objects.exists()


def test_string_forms() -> None:
    assert str(Job(tensorpix_id=52)) == "Job 52"
    assert str(Job(pk=3)) == "Job (local 3, not submitted)"
    assert str(Video(name="a.mp4")) == "a.mp4"
    assert str(Video()) == "Video (not uploaded)"


def test_status_events_read_as_labels_and_keep_unknown_values(db):
    job = Job.objects.create(tensorpix_id=5, status=7)
    first = JobEvent(job=job, kind=JobEventKind.STATUS, old_value="", new_value="1")
    later = JobEvent(job=job, kind=JobEventKind.STATUS, old_value="1", new_value="7")
    assert str(first) == "Status changed: - → Processing"
    assert str(later) == "Status changed: Processing → 7"
