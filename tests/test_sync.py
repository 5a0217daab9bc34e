"""The sync: payloads to rows, what counts as a change, transitions, signals, errors."""

from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal
from typing import Any, cast

import django
import pytest
from django.db import connection
from django.db.models.signals import post_init, post_save
from django.test.utils import CaptureQueriesContext

from django_tensorpix import signals
from django_tensorpix.client import Page, TensorPixClient
from django_tensorpix.conf import Account
from django_tensorpix.enums import JobEventKind, JobStatus, SubmissionState
from django_tensorpix.exceptions import MalformedPayload
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync import (
    SkippedObject,
    SyncResult,
    rows,
    sync_full_listing,
    sync_job,
    sync_jobs,
    sync_ml_model,
    sync_ml_models,
    sync_pages,
    sync_restored_video,
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
# Statements SQLite (Django < 6) adds for a page of 100 new jobs over one of 10.
SQLITE_SPLIT_EXTRA = 8
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
    # An old stamp, so the move is seen whatever the clock's resolution.
    synced_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    Job.objects.update(synced_at=synced_at)
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
    # The links are a many-to-many change: m2m_changed says so, not post_save.
    assert saved == []
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


class Listing:
    """A stand-in for a client whose listings are the given pages (no HTTP needed here)."""

    def __init__(self, *pages: list[dict[str, Any]], account: str = "default") -> None:
        self.account = Account(account, "k")
        self.pages = [Page(page, None) for page in pages]

    def iter_job_pages(self) -> Any:
        yield from self.pages

    iter_video_pages = iter_restored_video_pages = iter_ml_model_pages = iter_job_pages

    def full(self, kind: str, **options: Any) -> SyncResult:
        return sync_full_listing(kind, cast(TensorPixClient, self), **options)


def test_full_sync_marks_rows_no_longer_listed_as_missing() -> None:
    sync_jobs(page_of_jobs(3))

    result = Listing(page_of_jobs(1), page_of_jobs(1, first_id=1002)).full("jobs")

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

    listing = Listing()
    listing.iter_job_pages = pages  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        listing.full("jobs")

    assert not Job.objects.filter(missing_remote=True).exists()


def test_a_missing_row_listed_again_is_unflagged() -> None:
    sync_jobs(page_of_jobs(2))
    Listing(page_of_jobs(1)).full("jobs")

    Listing(page_of_jobs(2)).full("jobs")

    assert not Job.objects.filter(missing_remote=True).exists()


def test_full_video_sync_never_flags_inputs_of_jobs_created_from_a_url() -> None:
    url_input = video_payload(id=99, file=None, thumbnail=None, external_url="https://a.b/c.mp4")
    sync_videos([video_payload(), url_input])

    result = Listing([]).full("videos")

    assert result.missing == 1
    assert Video.objects.get(tensorpix_id=31).missing_remote
    assert not Video.objects.get(tensorpix_id=99).missing_remote


def test_unsubmitted_rows_are_never_flagged_missing() -> None:
    Job.objects.create()

    Listing().full("jobs")

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
    # savepoint, sync lock, lock jobs, (read + upsert) x ML models / videos / outputs, upsert jobs,
    # insert links, insert events, release savepoint.
    with django_assert_num_queries(13):
        sync_jobs(page_of_jobs(n))


@on_postgresql
@pytest.mark.parametrize("n", [10, 100])
def test_a_page_of_known_jobs_costs_constant_queries_on_postgresql(
    n: int, django_assert_num_queries: Any
) -> None:
    sync_jobs(page_of_jobs(n))
    finishing = [{**job, "eta_s": 1.0} for job in page_of_jobs(n)]
    # As above, with a read of the current links instead of the insert of new ones.
    with django_assert_num_queries(12):
        sync_jobs(finishing)


def test_query_count_per_page_is_exact_on_every_database() -> None:
    # SQLite on Django < 6 splits big INSERTs at 999 parameters (Django #36143): a page of
    # 100 new jobs then costs exactly EXTRA more statements than a page of 10 (the jobs'
    # and the nested rows' INSERTs, in chunks); elsewhere the count does not grow.
    small, large = queries_for(page_of_jobs(10)), queries_for(page_of_jobs(100, first_id=9000))

    splits = connection.vendor == "sqlite" and django.VERSION < (6,)
    expected = (12, 12 + SQLITE_SPLIT_EXTRA) if splits else (small, small)
    if connection.vendor == "postgresql":
        expected = (13, 13)
    assert (small, large) == expected


def test_a_payload_nested_too_deep_is_malformed_not_stored() -> None:
    # Item 7: a deep extra field would make every later comparison recurse as deep.
    payload = video_payload()
    deep: object = []
    for _ in range(500):
        deep = [deep]
    payload["extra"] = deep

    with pytest.raises(MalformedPayload, match="nested deeper"):
        sync_videos([payload])
    assert not Video.objects.exists()


def test_streamed_pages_never_flag_anything_missing() -> None:
    # Item 13: the safe default. A partial stream is just pages.
    sync_jobs(page_of_jobs(3))

    result = sync_pages("jobs", [page_of_jobs(1)])

    assert result.missing == 0
    assert not Job.objects.filter(missing_remote=True).exists()


def test_full_listing_uses_the_clients_account() -> None:
    sync_jobs(page_of_jobs(2), account="studio")
    sync_jobs(page_of_jobs(2))

    Listing(account="studio").full("jobs")

    assert set(Job.objects.filter(missing_remote=True).values_list("account", flat=True)) == {
        "studio"
    }


def test_a_malformed_job_mid_listing_is_skipped_reported_and_the_rest_synced() -> None:
    # Item 11: one bad job no longer stops the listing at its page on every run.
    sync_jobs(page_of_jobs(4))
    first, second = page_of_jobs(2), page_of_jobs(2, first_id=1002)
    first[1] = {**first[1], "status": "finished"}

    result = Listing(first, second).full("jobs")

    assert result.seen == 3
    assert result.skipped == [
        SkippedObject("Job", 1001, "status", result.skipped[0].reason),
    ]
    assert "Job 1001" in result.skipped[0].reason
    # Listed but unreadable is not gone: only after a complete listing, and never the bad one.
    assert not Job.objects.filter(missing_remote=True).exists()


def test_a_malformed_object_without_an_id_blocks_the_missing_marking() -> None:
    sync_jobs(page_of_jobs(3))

    result = Listing([*page_of_jobs(1), {"id": "x"}]).full("jobs")

    assert [skipped.tensorpix_id for skipped in result.skipped] == [None]
    assert result.missing == 0
    assert not Job.objects.filter(missing_remote=True).exists()


def test_sync_jobs_is_still_strict_by_default() -> None:
    with pytest.raises(MalformedPayload):
        sync_jobs([job_payload(), job_payload(id=53, status="x")])
    result = sync_jobs([job_payload(), job_payload(id=53, status="x")], skip_malformed=True)
    assert (result.created, len(result.skipped)) == (1, 1)


def test_an_output_video_claimed_by_another_job_later_moves_to_it() -> None:
    # Item 9: on another page or in another run, the one-to-one link moves; no IntegrityError.
    sync_jobs([job_payload(id=52)])
    sync_jobs([job_payload(id=53)])

    assert Job.objects.get(tensorpix_id=53).output_video.tensorpix_id == 74  # type: ignore[union-attr]
    assert Job.objects.get(tensorpix_id=52).output_video is None
    assert RestoredVideo.objects.count() == 1

    sync_jobs([job_payload(id=52)])  # and back, on every run, without crashing
    assert Job.objects.get(tensorpix_id=52).output_video is not None
    assert Job.objects.get(tensorpix_id=53).output_video is None


def test_two_jobs_of_one_page_sharing_an_output_skip_the_second_in_a_listing() -> None:
    result = Listing([job_payload(), job_payload(id=53)]).full("jobs")

    assert [(s.tensorpix_id, s.field) for s in result.skipped] == [(53, "output_video.id")]
    assert Job.objects.get().tensorpix_id == 52


@pytest.mark.parametrize("progress", [2.0, -0.5, 1e9])
def test_progress_out_of_range_never_freezes_the_job(progress: float) -> None:
    # Item 10: a stored 2 made every later payload of the same status "stale".
    sync_job(processing_job_payload(processing_progress=progress))

    job = sync_job(processing_job_payload(processing_progress=0.5, eta_s=12.0))

    job.refresh_from_db()
    assert job.processing_progress == 0.5
    assert job.eta_s == 12.0


def test_post_save_update_fields_are_safe_to_save_with(django_user_model: Any) -> None:
    # Item 12: a receiver re-saving with update_fields must work, links changing included.
    resaved: list[frozenset[str] | None] = []

    def receiver(sender: Any, instance: Any, update_fields: Any, **kwargs: Any) -> None:
        if sender is Job and update_fields and "synced_at" not in update_fields:
            resaved.append(update_fields)
            instance.save(update_fields=[*update_fields, "synced_at"])

    post_save.connect(receiver, weak=False)
    try:
        sync_job(job_payload())
        sync_job(job_payload(ml_models=job_payload()["ml_models"][1:], description="new"))
    finally:
        post_save.disconnect(receiver)

    assert resaved == [frozenset({"description"})]


def test_ml_model_link_changes_send_m2m_changed() -> None:
    from django.db.models.signals import m2m_changed

    sync_job(job_payload())
    received: list[tuple[str, set[int]]] = []

    def receiver(sender: Any, instance: Any, action: str, pk_set: set[int], **kw: Any) -> None:
        assert sender is Job.ml_models.through
        assert kw["model"] is MLModel
        received.append((action, {MLModel.objects.get(pk=pk).tensorpix_id for pk in pk_set}))

    m2m_changed.connect(receiver, weak=False)
    try:
        sync_job(job_payload(ml_models=job_payload()["ml_models"][1:]))
    finally:
        m2m_changed.disconnect(receiver)

    assert received == [("post_remove", {7})]


def test_sync_ml_model_creates_then_updates_one_row(saved: list[Any]) -> None:
    payload = job_payload()["ml_models"][0]

    created = sync_ml_model(payload)
    renamed = sync_ml_model({**payload, "name": "Upscale v2", "priority": 9})

    assert renamed.pk == created.pk
    row = MLModel.objects.get()
    assert (row.tensorpix_id, row.name, row.priority) == (payload["id"], "Upscale v2", 9)
    assert saved == [("MLModel", True, None), ("MLModel", False, frozenset({"name", "priority"}))]
    with pytest.raises(MalformedPayload, match="MLModel"):
        sync_ml_model({**payload, "task": None})


def test_sync_restored_video_creates_then_refreshes_urls_without_a_change(
    saved: list[Any],
) -> None:
    created = sync_restored_video(restored_video_payload())
    resigned = sync_restored_video(restored_video_payload(signature="zzz"))

    assert resigned.pk == created.pk
    assert RestoredVideo.objects.get().file.endswith("X-Signature=zzz")  # type: ignore[union-attr]
    assert saved == [("RestoredVideo", True, None)]
    sync_restored_video(restored_video_payload(width=3840))
    assert saved[-1] == ("RestoredVideo", False, frozenset({"width"}))


def test_a_failing_job_progress_receiver_does_not_stop_the_next_jobs_signal(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[int] = []

    def receiver(sender: Any, job: Job, **kwargs: Any) -> None:
        received.append(cast(int, job.tensorpix_id))
        if len(received) == 1:
            raise RuntimeError("receiver bug")

    signals.job_progress.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sync_jobs(
                [
                    processing_job_payload(id=1, input_video=video_payload(id=11)),
                    processing_job_payload(id=2, input_video=video_payload(id=12)),
                ]
            )
    finally:
        signals.job_progress.disconnect(receiver)

    assert received == [1, 2]
    assert "receiver bug" in caplog.text


def test_rows_are_built_as_django_builds_them() -> None:
    values = {"account": "default", "tensorpix_id": 5, "name": "a.mp4", "width": 640}

    built, constructed = rows.new_row(Video, values), Video(**values)

    def state(instance: Any) -> dict[str, Any]:
        return {k: v for k, v in vars(instance).items() if k != "_state"}

    assert state(built) == state(constructed)
    assert (built._state.adding, built._state.db) == (True, None)
    assert list(state(built)) == [f.attname for f in Video._meta.concrete_fields]


def test_post_init_receivers_see_every_row_the_sync_builds() -> None:
    built: list[str] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        built.append(sender.__name__)

    post_init.connect(receiver)
    try:
        sync_job(job_payload())
        sync_job(job_payload(description="again"))
    finally:
        post_init.disconnect(receiver)

    # First sync: one of each row built new; second: each row read back.
    for name in ("Job", "Video", "RestoredVideo", "MLModel"):
        assert built.count(name) >= 2, name


def test_a_field_tensorpix_added_later_turning_from_1_to_true_is_a_change(
    saved: list[Any],
) -> None:
    sync_job(job_payload(x_flag=1))

    changed = sync_jobs([job_payload(x_flag=True)])
    again = sync_jobs([job_payload(x_flag=True)])

    assert (changed.changed, again.unchanged) == (1, 1)
    assert Job.objects.get().remote_data["x_flag"] is True
    assert saved[-1] == ("Job", False, frozenset({"remote_data"}))


def test_a_synced_page_leaves_no_reference_cycle_behind() -> None:
    """Rows are freed as soon as a page is done, not when the cyclic GC gets to them:
    otherwise a long sync's peak memory grows with the garbage waiting for it."""
    sync_jobs(page_of_jobs(5))
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        sync_jobs(page_of_jobs(5))
        sync_jobs(page_of_jobs(5, first_id=3000))
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, Job | Video | RestoredVideo | MLModel)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()

    assert left == []
