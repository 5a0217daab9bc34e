"""The sync: payloads to rows, what counts as a change, transitions, signals, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from django_tensorpix import signals
from django_tensorpix.enums import JobEventKind, JobStatus, SubmissionState
from django_tensorpix.exceptions import MalformedPayload
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync import (
    SyncResult,
    sync_job,
    sync_jobs,
    sync_ml_models,
    sync_pages,
    sync_restored_videos,
    sync_videos,
)
from tests.strategies import (
    job_payload,
    page_of_jobs,
    processing_job_payload,
    restored_video_payload,
    video_payload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_path")]
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query counts are asserted on PostgreSQL"
)


@pytest.fixture
def saved() -> Any:
    """Every ``post_save`` of our models: (model name, created, update_fields)."""
    calls: list[tuple[str, bool, frozenset[str] | None]] = []

    def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if sender._meta.app_label == "django_tensorpix":
            assert kwargs["raw"] is False
            assert kwargs["using"] == "default"
            calls.append((sender.__name__, created, kwargs["update_fields"]))

    post_save.connect(receiver, weak=False)
    yield calls
    post_save.disconnect(receiver)


def all_rows() -> tuple[int, ...]:
    models = (Job, Video, RestoredVideo, MLModel, JobEvent, Job.ml_models.through)
    return tuple(model._default_manager.count() for model in models)


def test_sync_job_mirrors_every_field_with_nested_objects() -> None:
    job = sync_job(job_payload())

    job.refresh_from_db()
    assert job.tensorpix_id == 52
    assert job.account == "default"
    assert job.status == JobStatus.FINISHED
    assert job.cost_usd == Decimal("3.4702")
    assert job.started == dt.datetime(2025, 7, 1, 10, 0, tzinfo=dt.UTC)
    assert job.finished == dt.datetime(2025, 7, 1, 10, 20, 0, 250000, tzinfo=dt.UTC)
    assert job.codec == "libx265"
    assert job.submission_state == SubmissionState.SUBMITTED
    assert job.remote_data == {
        **job_payload(),
        "input_video": {"id": 31},
        "output_video": {"id": 74},
        "ml_models": [{"id": 7}, {"id": 8}],
    }
    assert job.synced_at is not None
    assert job.input_video is not None
    assert job.input_video.tensorpix_id == 31
    assert job.input_video.remote_data == video_payload()
    assert job.input_video.framerate == 29.97
    output = job.output_video
    assert output is not None
    assert output.tensorpix_id == 74
    assert output.bitrate == 9_223_372_036_854_775_807
    assert output.size == 400_000_000_000
    assert output.after_video == "https://storage.example.com/restored/74/after?X-Signature=aaa"
    assert sorted(job.ml_models.values_list("tensorpix_id", flat=True)) == [7, 8]


def test_resync_of_unchanged_payloads_writes_synced_at_but_sends_no_post_save(
    saved: list[Any],
) -> None:
    page = page_of_jobs(3)
    first = sync_jobs(page)
    synced_at = Job.objects.get(tensorpix_id=1000).synced_at
    saved.clear()

    second = sync_jobs(page)

    assert first == SyncResult(created=3)
    assert second == SyncResult(unchanged=3)
    assert saved == []
    resynced_at = Job.objects.get(tensorpix_id=1000).synced_at
    assert synced_at is not None
    assert resynced_at is not None
    assert resynced_at > synced_at
    assert all_rows()[:4] == (3, 3, 3, 2)


def test_new_rows_send_post_save_with_created_flag(saved: list[Any]) -> None:
    sync_jobs(page_of_jobs(2))

    assert sorted(saved, key=repr) == sorted(
        [("MLModel", True, None)] * 2
        + [("Video", True, None)] * 2
        + [("RestoredVideo", True, None)] * 2
        + [("Job", True, None)] * 2,
        key=repr,
    )


def test_resigned_urls_are_stored_but_are_not_a_change(saved: list[Any]) -> None:
    sync_job(job_payload())
    saved.clear()
    resigned = job_payload(
        output_video=restored_video_payload(signature="bbb"),
        input_video=video_payload(file="https://storage.example.com/videos/31/file?X-Signature=b"),
    )

    result = sync_jobs([resigned])

    assert result == SyncResult(unchanged=1)
    assert saved == []
    output = RestoredVideo.objects.get()
    assert output.file == "https://storage.example.com/restored/74/file?X-Signature=bbb"
    assert output.before_video == "https://storage.example.com/restored/74/before?X-Signature=bbb"
    assert (Video.objects.get().file or "").endswith("X-Signature=b")


def test_a_url_moving_to_another_path_is_a_change(saved: list[Any]) -> None:
    sync_job(job_payload())
    saved.clear()

    moved = restored_video_payload(file="https://storage.example.com/elsewhere/74?X-Signature=a")
    sync_jobs([job_payload(output_video=moved)])

    assert saved == [("RestoredVideo", False, frozenset({"file"}))]


def test_changed_fields_are_named_in_update_fields(saved: list[Any]) -> None:
    sync_job(processing_job_payload())
    saved.clear()

    sync_jobs([processing_job_payload(processing_progress=0.6, eta_s=80.0)])

    assert saved == [("Job", False, frozenset({"processing_progress", "eta_s"}))]


def test_a_field_tensorpix_added_later_is_kept_and_its_change_is_a_change(
    saved: list[Any],
) -> None:
    sync_job(job_payload(queue_position=3))
    saved.clear()

    job = sync_job(job_payload(queue_position=1))

    assert saved == [("Job", False, frozenset({"remote_data"}))]
    job.refresh_from_db()
    assert job.remote_data["queue_position"] == 1


def test_finishing_a_job_links_its_output_and_records_the_transition(saved: list[Any]) -> None:
    sync_job(processing_job_payload())
    saved.clear()

    job = sync_job(job_payload())

    assert job.output_video is not None
    job_save = [call for call in saved if call[0] == "Job"]
    assert len(job_save) == 1
    assert {"status", "output_video", "finished"} <= set(job_save[0][2] or ())
    events = list(job.events.values_list("kind", "old_value", "new_value"))
    assert events == [
        (JobEventKind.STATUS, "", "1"),
        (JobEventKind.STATUS, "1", "2"),
    ]
    assert job.status_changed_at is not None


def test_stale_payload_never_reopens_a_finished_job(saved: list[Any]) -> None:
    sync_job(job_payload())
    saved.clear()

    result = sync_jobs([processing_job_payload(processing_progress=0.9)])

    job = Job.objects.get()
    assert result == SyncResult(stale=1)
    assert job.status == JobStatus.FINISHED
    assert job.output_video is not None
    assert job.processing_progress == 1.0
    assert saved == []
    assert job.events.count() == 1


def test_progress_never_moves_backwards_within_a_status() -> None:
    sync_job(processing_job_payload(processing_progress=0.7))

    result = sync_jobs([processing_job_payload(processing_progress=0.5, eta_s=10.0)])

    job = Job.objects.get()
    assert result == SyncResult(stale=1)
    assert job.processing_progress == 0.7
    assert job.eta_s == 120.5


def test_a_failed_job_never_becomes_finished() -> None:
    sync_job(processing_job_payload(status=-1, output_video=None))

    sync_jobs([job_payload()])

    assert Job.objects.get().status == JobStatus.FAILED
    assert not RestoredVideo.objects.exists()


def test_a_requeued_job_may_go_back_to_in_queue() -> None:
    sync_job(processing_job_payload(processing_progress=0.3))

    sync_jobs([processing_job_payload(status=0, processing_progress=0.0)])

    assert Job.objects.get().status == JobStatus.IN_QUEUE


def test_unknown_status_is_stored_as_is_and_counts_as_active() -> None:
    job = sync_job(processing_job_payload(status=7))

    job.refresh_from_db()
    assert job.status == 7
    assert job.is_active
    assert list(Job.objects.active()) == [job]
    assert job.get_status_display() == 7


def test_a_job_can_leave_an_unknown_status_for_a_known_one() -> None:
    sync_job(processing_job_payload(status=7))

    sync_job(job_payload())

    assert Job.objects.get().status == JobStatus.FINISHED


def test_job_signals_are_sent_once_the_transaction_commits(
    django_capture_on_commit_callbacks: Any,
) -> None:
    received: list[tuple[str, Any, bool]] = []

    def listen(name: str) -> Any:
        def receiver(sender: Any, job: Job, created: bool, **kwargs: Any) -> None:
            received.append((name, kwargs.get("new_status"), created))

        return receiver

    receivers = {
        "changed": listen("changed"),
        "finished": listen("finished"),
        "failed": listen("failed"),
    }
    signals.job_status_changed.connect(receivers["changed"])
    signals.job_finished.connect(receivers["finished"])
    signals.job_failed.connect(receivers["failed"])
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            sync_job(processing_job_payload())
        assert received == []
        for callback in callbacks:
            callback()
        with django_capture_on_commit_callbacks(execute=True):
            sync_job(job_payload())
            sync_job(job_payload())
    finally:
        signals.job_status_changed.disconnect(receivers["changed"])
        signals.job_finished.disconnect(receivers["finished"])
        signals.job_failed.disconnect(receivers["failed"])

    assert received == [
        ("changed", 1, True),
        ("changed", 2, False),
        ("finished", None, False),
    ]


def test_ml_model_links_follow_the_payload(saved: list[Any]) -> None:
    job = sync_job(job_payload())
    saved.clear()
    denoise_only = job_payload()["ml_models"][1:]

    sync_jobs([job_payload(ml_models=denoise_only)])

    assert list(job.ml_models.values_list("tensorpix_id", flat=True)) == [8]
    assert saved == [("Job", False, frozenset({"ml_models"}))]
    assert MLModel.objects.count() == 2


def test_local_fields_are_never_touched_by_the_sync(django_user_model: Any) -> None:
    user = django_user_model.objects.create(username="ada")
    due = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    local = Job.objects.create(
        tensorpix_id=52,
        user=user,
        crf=18,
        submission_state=SubmissionState.SUBMITTED,
        next_poll_at=due,
        poll_failures=2,
    )

    job = sync_job(job_payload())

    assert job.pk == local.pk
    job.refresh_from_db()
    assert (job.user, job.crf, job.next_poll_at, job.poll_failures) == (user, 18, due, 2)
    assert job.status == JobStatus.FINISHED
    assert Job.objects.count() == 1


def test_accounts_keep_their_own_rows() -> None:
    sync_job(job_payload(), account="default")
    sync_job(job_payload(), account="studio")

    assert Job.objects.filter(tensorpix_id=52).count() == 2
    assert Video.objects.filter(account="studio").count() == 1


def test_duplicates_in_a_page_keep_the_last_payload() -> None:
    result = sync_jobs([processing_job_payload(), job_payload()])

    assert result == SyncResult(created=1)
    assert Job.objects.get().status == JobStatus.FINISHED


@pytest.mark.parametrize(
    ("payload", "object_type", "field"),
    [
        (job_payload(status=None), "Job", "status"),
        ({k: v for k, v in job_payload().items() if k != "started"}, "Job", "started"),
        (job_payload(preview=1), "Job", "preview"),
        (job_payload(status=True), "Job", "status"),
        (job_payload(stabilization_smoothing=2**31), "Job", "stabilization_smoothing"),
        (job_payload(cost_usd="1234567.1"), "Job", "cost_usd"),
        (job_payload(cost_usd="-"), "Job", "cost_usd"),
        (job_payload(started="yesterday"), "Job", "started"),
        (job_payload(started="9999-12-31T23:00:00-05:00"), "Job", "started"),
        (job_payload(eta_s=float("inf")), "Job", "eta_s"),
        (job_payload(eta_s=2**1100), "Job", "eta_s"),
        (job_payload(description="a\x00b"), "Job", "description"),
        (job_payload(x_note={"deep": ["\x00"]}), "Job", "x_note.deep[0]"),
        (job_payload(ml_models={"id": 1}), "Job", "ml_models"),
        (
            job_payload(output_video=restored_video_payload(bitrate=2**63)),
            "Job",
            "output_video.bitrate",
        ),
        (
            job_payload(input_video=video_payload(name="\ud800")),
            "Job",
            "input_video.name",
        ),
        (
            job_payload(ml_models=[{**job_payload()["ml_models"][0], "task": "sr"}]),
            "Job",
            "ml_models[0].task",
        ),
        (job_payload(id="52"), "Job", "id"),
        ("not an object", "Job", ""),
    ],
)
def test_malformed_payload_names_object_and_field_and_writes_nothing(
    payload: Any, object_type: str, field: str
) -> None:
    sync_jobs(page_of_jobs(2))
    before = all_rows()

    with pytest.raises(MalformedPayload) as error:
        sync_jobs([job_payload(id=1), payload])

    assert (error.value.object_type, error.value.field) == (object_type, field)
    assert object_type in str(error.value)
    assert all_rows() == before
    assert not Job.objects.filter(tensorpix_id=1).exists()


def test_two_jobs_sharing_an_output_video_are_malformed() -> None:
    with pytest.raises(MalformedPayload, match="also job 52's output") as error:
        sync_jobs([job_payload(), job_payload(id=53)])

    assert error.value.field == "output_video.id"
    assert not Job.objects.exists()


def test_flat_syncs_of_videos_restored_videos_and_ml_models() -> None:
    assert sync_videos([video_payload(), video_payload(id=32)]) == SyncResult(created=2)
    assert sync_restored_videos([restored_video_payload()]) == SyncResult(created=1)
    assert sync_ml_models(job_payload()["ml_models"]) == SyncResult(created=2)
    assert sync_videos([video_payload(name="renamed.mp4")]) == SyncResult(changed=1)
    assert Video.objects.get(tensorpix_id=31).name == "renamed.mp4"


def test_restored_video_without_optional_fields_reads_them_as_null() -> None:
    minimal = {
        key: value
        for key, value in restored_video_payload().items()
        if key
        in {"id", "job_id", "preview_videos", "name", "created_at", "width", "height", "owner"}
    }

    sync_restored_videos([minimal])

    video = RestoredVideo.objects.get()
    assert (video.file, video.bitrate, video.deleted, video.quality_score) == (
        None,
        None,
        None,
        None,
    )


def test_full_sync_marks_rows_no_longer_listed_as_missing() -> None:
    sync_jobs(page_of_jobs(3))

    result = sync_pages("jobs", [page_of_jobs(1), page_of_jobs(1, first_id=1002)])

    assert result.missing == 1
    missing = Job.objects.get(missing_remote=True)
    assert missing.tensorpix_id == 1001
    assert missing.missing_since is not None
    assert list(missing.events.values_list("kind", flat=True)) == [
        JobEventKind.STATUS,
        JobEventKind.MISSING_REMOTE,
    ]
    assert Job.objects.count() == 3


def test_an_interrupted_listing_marks_nothing_missing() -> None:
    sync_jobs(page_of_jobs(3))

    def pages() -> Any:
        yield page_of_jobs(1)
        raise ConnectionError("TensorPix went away")

    with pytest.raises(ConnectionError):
        sync_pages("jobs", pages())

    assert not Job.objects.filter(missing_remote=True).exists()


def test_a_missing_row_listed_again_is_unflagged() -> None:
    sync_jobs(page_of_jobs(2))
    sync_pages("jobs", [page_of_jobs(1)])

    sync_pages("jobs", [page_of_jobs(2)])

    assert not Job.objects.filter(missing_remote=True).exists()


def test_full_video_sync_never_flags_inputs_of_jobs_created_from_a_url() -> None:
    url_input = video_payload(id=99, file=None, thumbnail=None, external_url="https://a.b/c.mp4")
    sync_videos([video_payload(), url_input])

    result = sync_pages("videos", [[]])

    assert result.missing == 1
    assert Video.objects.get(tensorpix_id=31).missing_remote
    assert not Video.objects.get(tensorpix_id=99).missing_remote


def test_unsubmitted_rows_are_never_flagged_missing() -> None:
    Job.objects.create()

    sync_pages("jobs", [])

    assert not Job.objects.filter(missing_remote=True).exists()


def test_sync_pages_reports_running_totals() -> None:
    totals: list[int] = []

    sync_pages(
        "jobs",
        [page_of_jobs(2), page_of_jobs(3, first_id=5000)],
        on_page=lambda r: totals.append(r.seen),
    )

    assert totals == [2, 5]


def queries_for(page: list[dict[str, Any]]) -> int:
    with CaptureQueriesContext(connection) as captured:
        sync_jobs(page)
    return len(captured.captured_queries)


@on_postgresql
@pytest.mark.parametrize("n", [10, 100])
def test_a_page_of_new_jobs_costs_constant_queries_on_postgresql(
    n: int, django_assert_num_queries: Any
) -> None:
    # savepoint, lock jobs, (read + upsert) x ML models / videos / outputs, upsert jobs,
    # insert links, insert events, release savepoint.
    with django_assert_num_queries(12):
        sync_jobs(page_of_jobs(n))


@on_postgresql
@pytest.mark.parametrize("n", [10, 100])
def test_a_page_of_known_jobs_costs_constant_queries_on_postgresql(
    n: int, django_assert_num_queries: Any
) -> None:
    sync_jobs(page_of_jobs(n))
    finishing = [{**job, "eta_s": 1.0} for job in page_of_jobs(n)]
    # As above, with a read of the current links instead of the insert of new ones.
    with django_assert_num_queries(11):
        sync_jobs(finishing)


def test_query_count_per_page_is_bounded_on_every_database() -> None:
    # SQLite splits big INSERTs at its parameter limit (Django #36143), so there the
    # count grows by a few statements per 100 rows; on PostgreSQL it does not grow.
    small, large = queries_for(page_of_jobs(10)), queries_for(page_of_jobs(100, first_id=9000))

    extra = 0 if connection.vendor == "postgresql" else 10
    assert large <= small + extra
