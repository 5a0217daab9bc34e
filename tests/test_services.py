"""Submitting, cancelling, archiving and deleting through django_tensorpix.services.

Against the emulator over loopback. Task functions and services are called directly here;
tests/test_submission_delivery.py runs them through a real Celery worker.
"""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import transaction

from django_tensorpix import services, signals, submission
from django_tensorpix.enums import (
    CancelOutcome,
    JobEventKind,
    JobStatus,
    SubmissionState,
)
from django_tensorpix.exceptions import NotCancelable, TransientError
from django_tensorpix.models import (
    Job,
    JobEvent,
    MLModel,
    RestoredVideo,
    SubmissionLock,
    Video,
    upload_storage,
)
from django_tensorpix.testing import TensorPixEmulator

pytestmark = pytest.mark.django_db

URL = "https://media.example.com/clips/holiday_720p.mp4"
CREATE_FROM_URL = "POST /api/jobs/from-url/"
UPSCALE_2X = 1  # "200% AI Upscale" in the emulator's catalogue


class ReadRecorder(io.BufferedReader):
    """A file that remembers the largest read asked of it."""

    largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        type(self).largest_read = max(type(self).largest_read, -1 if size is None else size)
        return super().read(size)


class RecordingStorage(FileSystemStorage):
    """A file system storage whose files record how much each read asks for."""

    def _open(self, name: str, mode: str = "rb") -> Any:
        return File(ReadRecorder(io.FileIO(self.path(name), "rb")), name=name)


@pytest.fixture
def emulator(tensorpix_account: TensorPixEmulator, settings: Any, tmp_path: Any) -> Any:
    """The emulator as the default account, no reconcile delay, storages in tmp_path."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "tensorpix_test": {
            "BACKEND": "tests.test_services.RecordingStorage",
            "OPTIONS": {"location": str(tmp_path / "storage")},
        },
    }
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "RECONCILE_DELAY": 0,
        "UPLOAD_STORAGE": "tensorpix_test",
        "ARCHIVE_STORAGE": "tensorpix_test",
        "UPLOAD_CHUNK_SIZE": 64 * 1024,
    }
    return tensorpix_account


def posts(emulator: TensorPixEmulator, route: str = CREATE_FROM_URL) -> int:
    return sum(1 for record in emulator.requests if record.route == route)


def submitted_url_job(emulator: TensorPixEmulator, **options: Any) -> Job:
    job = services.enhance_from_url(URL, [UPSCALE_2X], **options)
    return services.submit_job(job)


def finish(emulator: TensorPixEmulator, job: Job) -> Job:
    emulator.advance(3600)
    services.submit_job(job)  # not needed for sync; polling would do it
    from django_tensorpix.client import TensorPixClient
    from django_tensorpix.sync import sync_job

    with TensorPixClient.for_account() as client:
        assert job.tensorpix_id is not None
        sync_job(client.get_job(job.tensorpix_id))
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED
    return job


# -- Validation and ML models ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"crf": 52}, "crf"),
        ({"crf": -1}, "crf"),
        ({"crf": 23.5}, "crf"),
        ({"grain": 1.5}, "grain"),
        ({"playback_speed": 0.05}, "playback_speed"),
        ({"target_fps": 241}, "target_fps"),
        ({"sharpen_strength": 11}, "sharpen_strength"),
        ({"stabilization_smoothing": 41}, "stabilization_smoothing"),
        ({"codec": "h264"}, "codec"),
        ({"container": "avi"}, "container"),
        ({"chroma_subsampling": "yuv411p"}, "chroma_subsampling"),
        ({"output_resolution": 1000}, "output_resolution"),
        ({"preview": "yes"}, "preview"),
        ({"comparison": 1}, "comparison"),
        ({"start_frame": -1}, "start_frame"),
        ({"end_frame": 0}, "end_frame"),
        ({"start_frame": 10, "end_frame": 10}, "end_frame"),
        ({"qscale": 10}, "qscale"),
        ({"prores_profile": 2}, "prores_profile"),
        ({"speed": 2}, "speed"),
    ],
)
def test_each_invalid_option_is_refused_by_field_before_any_request(emulator, options, field):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url(URL, [UPSCALE_2X], **options)
    assert list(caught.value.message_dict) == [field]
    assert Job.objects.count() == 0
    assert posts(emulator) == 0


@pytest.mark.parametrize(
    ("url", "models", "field", "words"),
    [
        ("ftp://example.com/a.mp4", [UPSCALE_2X], "video_url", "valid URL"),
        ("https://e.com/" + "a" * 2048, [UPSCALE_2X], "video_url", "2048"),
        (URL, [], "ml_models", "at least one"),
        (URL, [999], "ml_models", "id 999"),
        (URL, ["No Such Filter"], "ml_models", "No AI filter"),
        (URL, ["Super Resolution"], "ml_models", "several"),
        (URL, ["AI Denoise", "AI Denoise Strong"], "ml_models", "one filter per task"),
    ],
)
def test_url_and_ml_model_errors_name_their_field(emulator, url, models, field, words):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url(url, models)
    assert list(caught.value.message_dict) == [field]
    assert words in " ".join(caught.value.message_dict[field])


def test_ml_models_resolve_by_id_name_and_task_after_syncing_the_catalogue(emulator):
    assert MLModel.objects.count() == 0
    models = services.resolve_ml_models([2, "ai sharpen", "Face Enhance"])
    assert [model.name for model in models] == ["400% AI Upscale", "AI Sharpen", "Face Enhance"]
    assert MLModel.objects.count() == 18


def test_a_model_whose_max_resolution_is_below_the_input_is_refused(emulator):
    with pytest.raises(ValidationError, match="up to 921600 pixels"):
        services.resolve_ml_models(["400% AI Upscale"], input_resolution=(1920, 1080))
    assert services.resolve_ml_models(["200% AI Upscale"], input_resolution=(1920, 1080))


def test_file_only_options_are_accepted_for_files(emulator, tmp_path):
    source = tmp_path / "clip_720p.mp4"
    source.write_bytes(b"\0" * 1000)
    job = services.enhance_file(
        source, [UPSCALE_2X], qscale=10, prores_profile=3, codec="prores_ks"
    )
    assert (job.qscale, job.prores_profile, job.codec) == (10, 3, "prores_ks")


# -- Creating and submitting ----------------------------------------------------------------


def test_enhance_from_url_writes_the_row_and_enqueues_on_commit_only(
    emulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.enhance_from_url(URL, ["200% AI Upscale"], crf=18, grain=0.25)
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.PENDING
    assert (job.video_url, job.crf, job.grain, job.tensorpix_id) == (URL, 18, 0.25, None)
    assert list(job.ml_models.values_list("tensorpix_id", flat=True)) == [UPSCALE_2X]
    assert posts(emulator) == 0


def test_submit_links_the_remote_job_and_syncs_it(emulator):
    job = submitted_url_job(emulator, crf=18, container="mkv")
    assert job.submission_state == SubmissionState.SUBMITTED
    assert job.tensorpix_id is not None
    assert job.status == JobStatus.IN_QUEUE
    assert job.submission_attempts == 1
    assert job.input_video is not None
    assert job.input_video.external_url == URL
    assert posts(emulator) == 1
    assert services.submit_job(job).tensorpix_id == job.tensorpix_id
    assert posts(emulator) == 1


def test_a_duplicated_submission_does_nothing_while_the_source_is_held(emulator):
    job = services.enhance_from_url(URL, [UPSCALE_2X])
    other = services.enhance_from_url(URL, [UPSCALE_2X])
    with submission._source_lease("default", submission._source_key(job)) as held:
        assert held
        assert services.submit_job(other).submission_state == SubmissionState.PENDING
    assert posts(emulator) == 0
    assert services.submit_job(other).submission_state == SubmissionState.SUBMITTED
    assert not SubmissionLock.objects.exists()


def test_submitting_inside_a_transaction_is_refused_before_any_create(emulator):
    job = services.enhance_from_url(URL, [UPSCALE_2X])
    # A view under ATOMIC_REQUESTS (pytest-django's own transaction is exempt, as in
    # Django's TestCase): "submitting" could not be committed before the request.
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        services.submit_job(job)
    assert posts(emulator) == 0
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.PENDING


@pytest.mark.parametrize("order", ["newest", "oldest", "shuffled"])
def test_a_lost_create_answer_is_reconciled_never_resent(emulator, settings, order):
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 7}  # the list spans pages
    emulator.list_order = order
    emulator.seed_jobs(30)
    emulator.clear_requests()
    emulator.inject(CREATE_FROM_URL, "lost_response")
    job = submitted_url_job(emulator)
    assert job.submission_state == SubmissionState.UNCERTAIN
    assert "outcome is unknown" in job.last_submission_error
    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.SUBMITTED
    assert posts(emulator) == 1
    assert job.tensorpix_id == max(emulator.state.jobs)
    last = job.events.filter(kind=JobEventKind.SUBMISSION).last()
    assert last is not None
    assert "Reconciled" in last.message


def test_a_5xx_that_created_nothing_is_resent_after_reconciling(emulator):
    emulator.inject(CREATE_FROM_URL, "error", status=500)
    job = submitted_url_job(emulator)
    assert job.submission_state == SubmissionState.UNCERTAIN
    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.SUBMITTED
    assert posts(emulator) == 2
    assert len(emulator.state.jobs) == 1


def test_reconciling_waits_for_the_delay(emulator, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "RECONCILE_DELAY": 3600}
    emulator.inject(CREATE_FROM_URL, "lost_response")
    job = submitted_url_job(emulator)
    emulator.clear_requests()
    assert services.submit_job(job).submission_state == SubmissionState.UNCERTAIN
    assert emulator.requests == []


def test_reconciling_does_not_take_a_job_another_row_holds(emulator):
    first = submitted_url_job(emulator)
    emulator.inject(CREATE_FROM_URL, "lost_response")
    second = services.submit_job(services.enhance_from_url(URL, [UPSCALE_2X]))
    assert second.submission_state == SubmissionState.UNCERTAIN
    second = services.submit_job(second)
    assert second.tensorpix_id not in (None, first.tensorpix_id)
    assert len(emulator.state.jobs) == 2


def test_tensorpix_down_keeps_the_row_and_submits_later(emulator):
    services.resolve_ml_models([UPSCALE_2X])  # the catalogue was synced before the outage
    emulator.inject("*", "reset", times=None)
    job = submitted_url_job(emulator)
    assert job.submission_state == SubmissionState.UNCERTAIN
    assert services.submit_job(job).submission_state == SubmissionState.UNCERTAIN
    emulator.clear_faults()
    assert services.submit_pending_jobs() == 1
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED
    assert len(emulator.state.jobs) == 1


@pytest.mark.parametrize(
    ("url", "setup", "words"),
    [
        ("https://www.youtube.com/watch?v=x", None, "YouTube"),
        (URL, "no_credits", "Not enough Credits"),
        (URL, "quota", "Storage quota exceeded"),
    ],
)
def test_refusals_end_rejected_with_tensorpix_words_and_are_never_retried(
    emulator, django_capture_on_commit_callbacks, url, setup, words
):
    if setup == "no_credits":
        emulator.balance = Decimal("0.01")
    elif setup == "quota":
        emulator.storage_quota = 0
    received: list[dict[str, Any]] = []
    signals.job_submit_failed.connect(lambda **kw: received.append(kw), weak=False)
    try:
        job = services.enhance_from_url(url, [UPSCALE_2X])
        with django_capture_on_commit_callbacks(execute=True):
            job = services.submit_job(job)
    finally:
        signals.job_submit_failed.receivers.clear()
    assert job.submission_state == SubmissionState.REJECTED
    assert words in job.last_submission_error
    assert "POST" not in job.last_submission_error
    assert [kw["job"].pk for kw in received] == [job.pk]
    assert JobEvent.objects.filter(job=job, new_value=SubmissionState.REJECTED).exists()
    assert services.submit_pending_jobs() == 0
    assert services.submit_job(job).submission_state == SubmissionState.REJECTED
    route = posts(emulator)
    assert route == 1


def test_a_rejected_job_can_be_retried_explicitly(emulator):
    emulator.balance = Decimal("0.01")
    job = submitted_url_job(emulator)
    emulator.balance = Decimal("1000")
    job = services.retry_submission(job)
    assert job.submission_state == SubmissionState.PENDING
    assert services.submit_job(job).submission_state == SubmissionState.SUBMITTED


# -- Credits ------------------------------------------------------------------------------


@pytest.fixture
def credits_low_calls():
    calls: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        calls.append(kwargs)

    signals.credits_low.connect(receiver)
    yield calls
    signals.credits_low.disconnect(receiver)


def test_below_the_credits_threshold_a_submission_is_refused_before_any_create(
    emulator, settings, credits_low_calls
):
    settings.TENSORPIX = {**settings.TENSORPIX, "CREDITS_MIN_BALANCE": "500"}
    emulator.balance = Decimal("100")
    job = submitted_url_job(emulator)
    assert job.submission_state == SubmissionState.REJECTED
    assert "below CREDITS_MIN_BALANCE (500)" in job.last_submission_error
    assert posts(emulator) == 0
    assert [(c["balance"], c["threshold"]) for c in credits_low_calls] == [
        (Decimal("100.0000"), Decimal("500"))
    ]


def test_below_the_threshold_a_file_is_not_even_uploaded(emulator, settings, credits_low_calls):
    settings.TENSORPIX = {**settings.TENSORPIX, "CREDITS_MIN_BALANCE": "500"}
    emulator.balance = Decimal("100")
    job = services.enhance_file(ContentFile(b"x" * 500, name="a.mp4"), [UPSCALE_2X])
    assert services.submit_job(job).submission_state == SubmissionState.REJECTED
    assert posts(emulator, "POST /api/videos/") == 0
    assert len(credits_low_calls) == 1


def test_below_the_threshold_warn_submits_and_signals(emulator, settings, credits_low_calls):
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "CREDITS_MIN_BALANCE": 500,
        "CREDITS_LOW_ACTION": "warn",
    }
    emulator.balance = Decimal("100")
    assert submitted_url_job(emulator).submission_state == SubmissionState.SUBMITTED
    assert len(credits_low_calls) == 1


def test_above_the_threshold_nothing_is_signalled(emulator, settings, credits_low_calls):
    settings.TENSORPIX = {**settings.TENSORPIX, "CREDITS_MIN_BALANCE": 500}
    assert submitted_url_job(emulator).submission_state == SubmissionState.SUBMITTED
    assert credits_low_calls == []


# -- Files ----------------------------------------------------------------------------------


def test_a_file_is_kept_uploaded_streamed_then_submitted_once_ready(emulator, settings, tmp_path):
    settings.TENSORPIX = {**settings.TENSORPIX, "DELETE_LOCAL_AFTER_UPLOAD": True}
    source = tmp_path / "family_720p.mp4"
    source.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    job = services.enhance_file(source, [UPSCALE_2X], crf=20)
    video = job.input_video
    assert video is not None
    stored = str(video.local_file.name)
    storage = RecordingStorage(location=str(tmp_path / "storage"))
    assert storage.size(stored) == 1024 * 1024
    ReadRecorder.largest_read = 0

    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.UPLOADING
    assert 0 < ReadRecorder.largest_read <= 64 * 1024
    video.refresh_from_db()
    assert video.tensorpix_id is not None
    assert video.size == 1024 * 1024
    assert posts(emulator, "POST /api/jobs/") == 0

    emulator.advance(5)
    services.submit_pending_jobs()
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED
    assert job.input_video_id == video.pk
    assert posts(emulator, "POST /api/videos/") == 1
    assert not storage.exists(stored)
    video.refresh_from_db()
    assert not video.local_file


def test_a_file_from_a_django_file_or_a_storage_name(emulator, tmp_path):
    job = services.enhance_file(ContentFile(b"x" * 500, name="a.mp4"), [UPSCALE_2X])
    assert job.input_video is not None
    assert job.input_video.name == "a.mp4"
    assert job.input_video.size == 500
    name = str(job.input_video.local_file.name)
    again = services.enhance_file(name, [UPSCALE_2X], name="again.mp4")
    assert again.input_video is not None
    assert again.input_video.local_file.name == name
    with pytest.raises(ValidationError) as caught:
        services.enhance_file("nowhere/b.mp4", [UPSCALE_2X])
    assert list(caught.value.message_dict) == ["source"]


def test_a_lost_upload_answer_links_the_upload_it_made(emulator, tmp_path):
    emulator.inject("POST /api/videos/", "lost_response")
    job = services.enhance_file(ContentFile(b"x" * 500, name="a.mp4"), [UPSCALE_2X])
    assert services.submit_job(job).submission_state == SubmissionState.UPLOADING
    emulator.advance(5)
    assert services.submit_job(job).submission_state == SubmissionState.SUBMITTED
    assert posts(emulator, "POST /api/videos/") == 1
    assert len(emulator.state.videos) == 1


# -- Cancel -----------------------------------------------------------------------------------


def test_cancel_204_then_409(emulator):
    job = submitted_url_job(emulator)
    result = services.cancel_job(job)
    assert result.outcome == CancelOutcome.CANCELED
    assert result.done
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED
    again = services.cancel_job(job)
    assert again.outcome == CancelOutcome.ALREADY_CANCELED
    assert "already been canceled" in again.message
    assert job.events.filter(kind=JobEventKind.CANCEL).count() == 2


def test_cancel_500_is_reported_and_the_job_stays_active(emulator):
    job = submitted_url_job(emulator)
    emulator.inject("DELETE /api/jobs/{id}/", "error", status=500)
    result = services.cancel_job(job)
    assert result.outcome == CancelOutcome.NOT_STOPPED
    assert not result.done
    job.refresh_from_db()
    assert job.status == JobStatus.IN_QUEUE
    assert job.is_active


def test_a_lost_delete_answer_is_retried_and_counts_as_done(emulator):
    job = submitted_url_job(emulator)
    emulator.inject("DELETE /api/jobs/{id}/", "lost_response")
    result = services.cancel_job(job)
    assert result.outcome == CancelOutcome.ALREADY_CANCELED
    assert result.done
    deletes = [r.status for r in emulator.requests if r.route == "DELETE /api/jobs/{id}/"]
    assert deletes == [0, 409]
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELED


def test_a_finished_job_cannot_be_canceled(emulator):
    job = finish(emulator, submitted_url_job(emulator))
    assert services.cancel_job(job).outcome == CancelOutcome.ALREADY_ENDED


def test_an_unsent_job_is_withdrawn_and_an_uncertain_one_refused(emulator):
    job = services.enhance_from_url(URL, [UPSCALE_2X])
    assert services.cancel_job(job).outcome == CancelOutcome.WITHDRAWN
    assert services.submit_job(job).submission_state == SubmissionState.WITHDRAWN
    emulator.inject(CREATE_FROM_URL, "lost_response")
    uncertain = submitted_url_job(emulator)
    with pytest.raises(NotCancelable):
        services.cancel_job(uncertain)
    assert posts(emulator) == 1


# -- Outputs ----------------------------------------------------------------------------------


def test_output_download_url_is_fresh_and_downloads(emulator):
    job = finish(emulator, submitted_url_job(emulator))
    assert job.output_video is not None
    url = services.output_download_url(job)
    assert url.startswith(emulator.base_url)
    from django_tensorpix.client import TensorPixClient

    with TensorPixClient.for_account() as client:
        assert client.download(url, io.BytesIO()) == job.output_video.size


def test_archive_then_delete_the_remote_output(emulator, tmp_path):
    job = finish(emulator, submitted_url_job(emulator))
    used = emulator.storage_used
    job = services.archive_output(job, delete_remote=True)
    storage = FileSystemStorage(location=str(tmp_path / "storage"))
    output, name = job.output_video, str(job.archived_file.name)
    assert output is not None
    assert job.archived_at is not None
    assert storage.size(name) == output.size
    assert emulator.storage_used == used - (output.size or 0)
    assert RestoredVideo.objects.get(pk=output.pk).deleted is not None
    assert services.output_download_url(job).endswith(name)
    assert services.archive_output(job).archived_file.name == name
    assert len(storage.listdir(name.rsplit("/", 1)[0])[1]) == 1


def test_an_interrupted_archive_claims_nothing_and_can_be_run_again(emulator, tmp_path):
    job = finish(emulator, submitted_url_job(emulator))
    emulator.inject("GET /storage/{key}", "truncated")
    with pytest.raises(TransientError):
        services.archive_output(job)
    job.refresh_from_db()
    assert not job.archived_file
    assert job.archived_at is None
    assert not (tmp_path / "storage").exists() or not any((tmp_path / "storage").rglob("*.mp4"))
    job = services.archive_output(job)
    assert job.archived_file


def test_deleting_an_uploaded_input_keeps_the_row(emulator):
    video_id = emulator.add_video(name="in.mp4")
    video = Video.objects.create(tensorpix_id=video_id, name="in.mp4")
    services.delete_remote_video(video)
    assert video.remote_deleted_at is not None
    services.delete_remote_video(video)  # 404 now: already done
    assert Video.objects.filter(pk=video.pk).exists()


# -- The sweep and the tasks ------------------------------------------------------------------


def test_the_sweep_waits_for_the_grace_period_before_re_driving(emulator, settings):
    settings.TENSORPIX = {**settings.TENSORPIX, "SUBMIT_GRACE_PERIOD": 3600}
    job = services.enhance_from_url(URL, [UPSCALE_2X])
    assert services.submit_pending_jobs() == 0
    Job.objects.filter(pk=job.pk).update(local_created_at=job.local_created_at - timedelta(hours=2))
    assert services.submit_pending_jobs() == 1
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED


def test_the_tasks_call_the_services_and_ignore_vanished_rows(emulator):
    from django_tensorpix import tasks

    job = services.enhance_from_url(URL, [UPSCALE_2X])
    tasks.submit_job(job.pk)
    tasks.submit_job(job.pk)  # a duplicated message
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED
    assert posts(emulator) == 1
    job = finish(emulator, job)
    tasks.archive_job_output(job.pk)
    tasks.archive_job_output(job.pk)
    job.refresh_from_db()
    assert job.archived_file
    assert job.events.filter(kind=JobEventKind.ARCHIVE).count() == 1
    tasks.submit_job(10**9)
    tasks.archive_job_output(10**9)


def test_delete_remote_output_without_archiving_first(emulator):
    job = finish(emulator, submitted_url_job(emulator))
    services.delete_remote_output(job)
    services.delete_remote_output(job)  # already gone: done
    assert job.output_video is not None
    assert RestoredVideo.objects.get(pk=job.output_video.pk).deleted is not None
    assert len([r for r in emulator.requests if r.method == "DELETE"]) == 2


def test_a_refused_upload_ends_rejected_with_tensorpix_words(emulator):
    job = services.enhance_file(ContentFile(b"hello", name="notes.txt"), [UPSCALE_2X])
    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.REJECTED
    assert "Upload a valid video file" in job.last_submission_error
    assert posts(emulator, "POST /api/jobs/") == 0


def test_an_upload_that_never_arrived_is_sent_again(emulator):
    emulator.inject("POST /api/videos/", "reset")
    job = services.enhance_file(ContentFile(b"x" * 500, name="a.mp4"), [UPSCALE_2X])
    assert services.submit_job(job).submission_state == SubmissionState.UPLOADING
    assert len(emulator.state.videos) == 0
    emulator.advance(5)
    services.submit_job(job)  # nothing found at TensorPix: uploaded again
    emulator.advance(5)
    assert services.submit_job(job).submission_state == SubmissionState.SUBMITTED
    assert len(emulator.state.videos) == 1


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_row_is_kept_and_the_sweep_submits_it(emulator, settings, caplog):
    from celery import Celery, _state

    settings.TENSORPIX = {**settings.TENSORPIX, "SUBMIT_GRACE_PERIOD": 0}
    previous = _state.get_current_app()
    down = Celery("broker-down", broker="redis://127.0.0.1:1/0", set_as_current=False)
    down.conf.broker_connection_retry = False
    down.conf.broker_connection_max_retries = 0
    down.conf.task_publish_retry = False
    down.conf.broker_transport_options = {"max_retries": 0}
    down.set_current()
    try:
        job = services.enhance_from_url(URL, [UPSCALE_2X])
    finally:
        previous.set_current()
    assert _state.get_current_app() is previous
    assert "submit_pending_jobs will" in caplog.text
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.PENDING
    assert services.submit_pending_jobs() == 1
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED


def test_a_vanished_input_ends_rejected_not_retried_forever(emulator, tmp_path):
    job = services.enhance_file(ContentFile(b"x" * 500, name="a.mp4"), [UPSCALE_2X])
    assert job.input_video is not None
    RecordingStorage(location=str(tmp_path / "storage")).delete(
        str(job.input_video.local_file.name)
    )
    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.REJECTED
    assert "is gone" in job.last_submission_error

    other = services.enhance_file(ContentFile(b"y" * 500, name="b.mp4"), [UPSCALE_2X])
    assert services.submit_job(other).submission_state == SubmissionState.UPLOADING
    assert other.input_video is not None
    other.input_video.refresh_from_db()
    assert other.input_video.tensorpix_id is not None
    emulator.state.delete_video(other.input_video.tensorpix_id)
    assert services.submit_job(other).submission_state == SubmissionState.REJECTED
    assert posts(emulator, "POST /api/jobs/") == 0


def test_a_job_the_full_sync_imported_meanwhile_is_merged_into_its_local_row(emulator):
    from django_tensorpix.client import TensorPixClient
    from django_tensorpix.sync import sync_jobs

    emulator.inject(CREATE_FROM_URL, "lost_response")
    job = submitted_url_job(emulator)
    with TensorPixClient.for_account() as client:
        for page in client.iter_job_pages():
            sync_jobs(page)
    (imported,) = Job.objects.exclude(pk=job.pk)
    assert imported.submission_attempts == 0
    job = services.submit_job(job)
    assert job.submission_state == SubmissionState.SUBMITTED
    assert job.tensorpix_id == imported.tensorpix_id
    assert list(Job.objects.values_list("pk", flat=True)) == [job.pk]
    assert posts(emulator) == 1


@pytest.mark.django_db(transaction=True)
def test_archive_on_finish_skips_imported_history(emulator, settings, monkeypatch):
    from django_tensorpix import tasks
    from django_tensorpix.client import TensorPixClient
    from django_tensorpix.sync import sync_jobs

    settings.TENSORPIX = {**settings.TENSORPIX, "ARCHIVE_OUTPUTS": True}
    sent: list[int] = []
    monkeypatch.setattr(tasks.archive_job_output, "delay", sent.append)
    emulator.seed_jobs(3, status=2)
    with TensorPixClient.for_account() as client:
        for page in client.iter_job_pages():
            sync_jobs(page)
    assert Job.objects.finished().count() == 3
    assert sent == []

    monkeypatch.setattr(services, "enqueue_submission", lambda job_pk: None)
    job = submitted_url_job(emulator)
    finish(emulator, job)
    assert sent == [job.pk]


def test_the_ready_made_beat_schedule_runs_the_submission_sweep():
    from django_tensorpix.schedules import beat_schedule

    entry = beat_schedule()["tensorpix-submit-pending-jobs"]
    assert entry["task"] == "django_tensorpix.submit_pending_jobs"
    assert entry["schedule"] == entry["options"]["expires"] == 30.0
    assert "tensorpix-submit-pending-jobs" not in beat_schedule(submit_interval=None)
    assert beat_schedule(queue="q")["tensorpix-submit-pending-jobs"]["options"]["queue"] == "q"


# -- Uploads without a job ------------------------------------------------------------------


def test_upload_video_keeps_the_file_and_uploads_it_in_the_task_on_commit(
    emulator, settings, tmp_path, django_capture_on_commit_callbacks
):
    # Uploading costs storage, not Credits: even below the threshold it is not refused.
    settings.TENSORPIX = {**settings.TENSORPIX, "CREDITS_MIN_BALANCE": "500"}
    source = tmp_path / "beach.mp4"
    source.write_bytes(bytes(range(256)) * 1024)
    with django_capture_on_commit_callbacks() as callbacks:
        video = services.upload_video(source, user=None)
    assert len(callbacks) == 1
    assert (video.name, video.size, video.tensorpix_id) == ("beach.mp4", 256 * 1024, None)
    storage = RecordingStorage(location=str(tmp_path / "storage"))
    assert storage.size(str(video.local_file.name)) == 256 * 1024
    assert posts(emulator, "POST /api/videos/") == 0
    assert not video.jobs.exists()

    from django_tensorpix import tasks

    tasks.upload_video(video.pk)
    video.refresh_from_db()
    remote = emulator.state.videos[video.tensorpix_id]
    assert (remote.name, remote.size, remote.uploaded) == ("beach.mp4", 256 * 1024, True)
    assert video.synced_at is not None
    assert [record.route for record in emulator.requests] == ["POST /api/videos/"]

    tasks.upload_video(video.pk)  # a duplicated message does nothing
    assert services.upload_pending_videos() == 0
    assert posts(emulator, "POST /api/videos/") == 1


@pytest.mark.parametrize(
    ("source", "name", "field"),
    [
        (ContentFile(b"", name="empty.mp4"), None, "source"),
        (ContentFile(b"x" * 10), None, "name"),
        ("nowhere/b.mp4", None, "source"),
    ],
)
def test_upload_video_refuses_bad_input_by_field(emulator, source, name, field):
    with pytest.raises(ValidationError) as caught:
        services.upload_video(source, name=name)
    assert list(caught.value.message_dict) == [field]
    assert not Video.objects.exists()


def test_a_lost_upload_message_is_re_driven_by_the_sweep(emulator):
    video = services.upload_video(ContentFile(b"x" * 500, name="a.mp4"))  # on_commit never runs
    job = services.enhance_file(ContentFile(b"y" * 500, name="b.mp4"), [UPSCALE_2X])
    assert services.upload_pending_videos() == 1  # a job's input waits for its submission
    video.refresh_from_db()
    assert video.tensorpix_id in emulator.state.videos
    assert job.input_video is not None
    job.input_video.refresh_from_db()
    assert job.input_video.tensorpix_id is None
    from django_tensorpix.schedules import beat_schedule

    entry = beat_schedule()["tensorpix-upload-pending-videos"]
    assert entry["task"] == "django_tensorpix.upload_pending_videos"


def test_a_lost_plain_upload_answer_links_the_upload_it_made(emulator):
    emulator.inject("POST /api/videos/", "lost_response")
    video = services.upload_pending_video(services.upload_video(ContentFile(b"x" * 500, "a.mp4")))
    assert video.tensorpix_id is None
    emulator.advance(5)
    assert services.upload_pending_videos() == 1
    video.refresh_from_db()
    assert video.tensorpix_id is not None
    assert posts(emulator, "POST /api/videos/") == 1
    assert len(emulator.state.videos) == 1


def test_delete_local_after_upload_applies_to_plain_uploads_once_tensorpix_has_them(
    emulator, settings
):
    settings.TENSORPIX = {**settings.TENSORPIX, "DELETE_LOCAL_AFTER_UPLOAD": True}
    storage = upload_storage()
    uploaded = services.upload_video(ContentFile(b"x" * 500, name="a.mp4"))
    refused = services.upload_video(ContentFile(b"hello", name="notes.txt"))
    lost = services.upload_video(ContentFile(b"z" * 700, name="c.mp4"))
    names = {video.pk: str(video.local_file.name) for video in (uploaded, refused, lost)}

    uploaded = services.upload_pending_video(uploaded)
    refused = services.upload_pending_video(refused)
    emulator.inject("POST /api/videos/", "lost_response")
    lost = services.upload_pending_video(lost)

    assert uploaded.tensorpix_id is not None
    assert uploaded.local_file.name == ""
    assert not storage.exists(names[uploaded.pk])
    # A refusal keeps the file (the user may want it back); an unknown outcome keeps it
    # until the upload is found.
    assert refused.upload_error
    assert storage.exists(names[refused.pk])
    assert lost.tensorpix_id is None
    assert storage.exists(names[lost.pk])
    emulator.advance(5)
    lost = services.upload_pending_video(lost)
    assert lost.tensorpix_id is not None
    assert lost.local_file.name == ""
    assert not storage.exists(names[lost.pk])


def test_a_refused_plain_upload_is_kept_with_tensorpix_words_and_not_retried(emulator):
    video = services.upload_video(ContentFile(b"hello", name="notes.txt"))
    video = services.upload_pending_video(video)
    assert "Upload a valid video file" in video.upload_error
    assert services.upload_pending_videos() == 0
    assert posts(emulator, "POST /api/videos/") == 1
