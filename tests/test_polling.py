"""The poller against the emulator: schedule, claims, list-versus-GET, errors, durable signals."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from django_tensorpix import polling, signals
from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobEventKind, JobStatus
from django_tensorpix.exceptions import RateLimited
from django_tensorpix.models import AccountPollState, Job, JobEvent
from django_tensorpix.sync import dispatch, sync_jobs
from django_tensorpix.testing import FINISHED, IN_QUEUE, PROCESSING, TensorPixEmulator

pytestmark = pytest.mark.django_db(transaction=True)

LIST = "GET /api/jobs/"
RETRIEVE = "GET /api/jobs/{id}/"


def import_jobs(emulator: TensorPixEmulator) -> None:
    """Copy the emulator's jobs in, as a full sync would; all due at once."""
    with TensorPixClient.for_account() as client:
        sync_jobs(list(client.iter_jobs()))
    Job.objects.update(next_poll_at=None)


def routes(emulator: TensorPixEmulator) -> list[str]:
    return [record.route for record in emulator.requests]


@pytest.fixture
def received() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every job signal sent, as (name, arguments)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    names = ("job_status_changed", "job_finished", "job_failed", "job_stalled", "job_progress")
    handlers = []
    for name in names:

        def handler(sender: Any, _name: str = name, **kwargs: Any) -> None:
            calls.append((_name, kwargs))

        getattr(signals, name).connect(handler, weak=False)
        handlers.append((name, handler))
    yield calls
    for name, handler in handlers:
        getattr(signals, name).disconnect(handler)


def make_job(**fields: Any) -> Job:
    defaults: dict[str, Any] = {"tensorpix_id": 1, "status": JobStatus.PROCESSING}
    return Job(**{**defaults, **fields})


# -- the schedule ------------------------------------------------------------------------


def test_queued_job_is_polled_at_the_calm_interval(settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "POLL_JITTER": 0.0}
    job = make_job(status=JobStatus.IN_QUEUE)
    assert polling.next_poll_delay(job, timezone.now()) == 30.0


def test_processing_job_is_polled_sparsely_early_and_tightly_near_the_end(settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "POLL_JITTER": 0.0}
    now = timezone.now()
    delays = [
        polling.next_poll_delay(make_job(eta_s=eta, processing_progress=0.0), now)
        for eta in (3000, 600, 60, 10, 1)
    ]
    assert delays == [300.0, 300.0, 30.0, 5.0, 2.0]  # ceiling, share, share, share, floor


def test_progress_tightens_an_eta_that_overstates(settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "POLL_JITTER": 0.0}
    now = timezone.now()
    # Processing for 90 s and 90 % done: about 10 s left, whatever eta_s claims.
    job = make_job(
        eta_s=400.0, processing_progress=0.9, status_changed_at=now - timedelta(seconds=90)
    )
    assert polling.next_poll_delay(job, now) == pytest.approx(5.0)


def test_jitter_spreads_waits_within_floor_and_ceiling() -> None:
    rng = random.Random(1)
    now = timezone.now()
    delays = {polling.next_poll_delay(make_job(eta_s=100.0), now, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(45.0 <= delay <= 55.0 for delay in delays if delay is not None)


def test_terminal_and_missing_jobs_are_never_polled_again() -> None:
    now = timezone.now()
    assert polling.next_poll_delay(make_job(status=JobStatus.FINISHED), now) is None
    assert polling.next_poll_delay(make_job(missing_remote=True), now) is None


def test_list_is_chosen_only_when_it_costs_fewer_requests() -> None:
    assert polling.choose_listing(due=5, listed_count=300, page_size=100)
    assert not polling.choose_listing(due=3, listed_count=300, page_size=100)
    assert not polling.choose_listing(due=1, listed_count=10, page_size=100)
    assert not polling.choose_listing(due=50, listed_count=None, page_size=100)


# -- sweeps ------------------------------------------------------------------------------


def test_sweep_refreshes_due_jobs_and_schedules_the_next_poll(tensorpix_account: Any) -> None:
    ids = tensorpix_account.seed_jobs(3, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.advance(24 * 3600)

    result = polling.poll_due_jobs()

    assert result.claimed == 3
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.FINISHED}
    assert not Job.objects.filter(next_poll_at__isnull=False).exists()
    assert not Job.objects.exclude(poll_lease_owner="").exists()
    assert polling.poll_due_jobs().claimed == 0
    assert len(ids) == 3


def test_active_jobs_get_their_next_poll_and_are_not_due_before_it(tensorpix_account: Any) -> None:
    tensorpix_account.max_active_jobs = 0
    tensorpix_account.seed_jobs(2, status=IN_QUEUE)
    import_jobs(tensorpix_account)

    polling.poll_due_jobs()

    now = timezone.now()
    for job in Job.objects.all():
        assert job.next_poll_at is not None
        assert 20 <= (job.next_poll_at - now).total_seconds() <= 34
    assert polling.poll_due_jobs().claimed == 0


def test_two_claims_never_share_a_job(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(10, status=PROCESSING)
    import_jobs(tensorpix_account)

    token_a, first = polling.claim_due_jobs(limit=6)
    _token_b, second = polling.claim_due_jobs(limit=10)

    assert len(first) == 6
    assert len(second) == 4
    assert not {job.pk for job in first} & {job.pk for job in second}
    assert Job.objects.filter(poll_lease_owner=token_a).count() == 6


def test_expired_lease_is_claimed_again(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    polling.claim_due_jobs()  # a worker that dies holding the job

    assert polling.claim_due_jobs()[1] == []
    later = timezone.now() + timedelta(seconds=121)
    assert len(polling.claim_due_jobs(now=later)[1]) == 1


def test_many_due_jobs_are_read_through_the_list(tensorpix_account: Any, settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 10}
    tensorpix_account.seed_jobs(30, status=PROCESSING)
    tensorpix_account.seed_jobs(5, status=FINISHED)
    tensorpix_account.list_order = "shuffled"
    import_jobs(tensorpix_account)
    AccountPollState.objects.create(account="default", listed_count=35)
    tensorpix_account.clear_requests()

    result = polling.poll_due_jobs()

    assert result.claimed == 30
    calls = routes(tensorpix_account)
    assert 1 <= calls.count(LIST) <= 4
    # What the list did not show (order unknown) is fetched one by one, nothing twice.
    fetched = [r.path for r in tensorpix_account.requests if r.route == RETRIEVE]
    assert len(fetched) == len(set(fetched))
    assert len(result.refreshed) == 30
    assert len(calls) < 30
    assert not Job.objects.exclude(poll_lease_owner="").exists()


def test_few_due_jobs_are_fetched_one_by_one(tensorpix_account: Any, settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 10}
    tensorpix_account.seed_jobs(2, status=PROCESSING)
    tensorpix_account.seed_jobs(40, status=FINISHED)
    import_jobs(tensorpix_account)
    AccountPollState.objects.create(account="default", listed_count=42)
    tensorpix_account.clear_requests()

    polling.poll_due_jobs()

    assert routes(tensorpix_account) == [RETRIEVE, RETRIEVE]


def test_listing_stops_once_every_claimed_job_was_seen(
    tensorpix_account: Any, settings: Any
) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 10}
    tensorpix_account.seed_jobs(60, status=FINISHED)
    tensorpix_account.seed_jobs(20, status=PROCESSING)  # the newest: listed first
    import_jobs(tensorpix_account)
    AccountPollState.objects.create(account="default", listed_count=80)
    tensorpix_account.clear_requests()

    polling.poll_due_jobs()

    assert routes(tensorpix_account) == [LIST, LIST]


# -- errors ----------------------------------------------------------------------------


def test_transient_error_backs_off_that_job_only(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.inject(RETRIEVE, "error", status=503)

    result = polling.poll_due_jobs()

    job = Job.objects.get()
    assert result.failed == 1
    assert job.poll_failures == 1
    assert "503" in job.last_sync_error
    assert job.next_poll_at is not None
    assert job.next_poll_at > timezone.now()
    assert job.poll_lease_owner == ""


def test_a_slow_sweep_gives_back_what_it_could_not_refresh_within_half_its_lease(
    tensorpix_account: Any, settings: Any
) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "POLL_LEASE": 0.5}
    tensorpix_account.seed_jobs(2, status=FINISHED)
    tensorpix_account.seed_jobs(6, status=PROCESSING)
    import_jobs(tensorpix_account)
    AccountPollState.objects.create(account="default", listed_count=10**6)  # GETs
    tensorpix_account.inject(RETRIEVE, "latency", delay=0.1, times=None)
    tensorpix_account.clear_requests()

    result = polling.poll_due_jobs()

    assert 2 <= len(tensorpix_account.requests) < 6
    assert len(result.refreshed) == len(tensorpix_account.requests)
    assert not Job.objects.exclude(poll_lease_owner="").exists()
    assert Job.objects.filter(status=JobStatus.PROCESSING).count() == 6
    assert len(polling.claim_due_jobs()[1]) == 6 - len(result.refreshed)


def test_tensorpix_down_costs_a_few_requests_not_one_per_job(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(10, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.inject("*", "error", status=503, times=None)
    tensorpix_account.clear_requests()

    result = polling.poll_due_jobs()

    assert routes(tensorpix_account) == [LIST, RETRIEVE, RETRIEVE, RETRIEVE]
    assert result.failed == 10
    assert set(Job.objects.values_list("poll_failures", flat=True)) == {1}
    assert not Job.objects.filter(next_poll_at__isnull=True).exists()


def test_rate_limit_pauses_the_account_for_every_worker(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(3, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.inject("*", "rate_limit", retry_after=40)
    tensorpix_account.clear_requests()

    polling.poll_due_jobs()

    assert [r.status for r in tensorpix_account.requests] == [429]  # stopped at the first
    state = AccountPollState.objects.get(account="default")
    assert state.paused_until is not None
    assert 35 <= (state.paused_until - timezone.now()).total_seconds() <= 41
    # Another worker (the database is all they share) leaves the account alone.
    Job.objects.update(next_poll_at=None)
    assert polling.poll_due_jobs().claimed == 0
    assert len(tensorpix_account.requests) == 1
    with pytest.raises(RateLimited):
        polling.refresh_job(Job.objects.first())  # type: ignore[arg-type]
    assert len(tensorpix_account.requests) == 1


def test_job_deleted_at_tensorpix_stops_being_polled(tensorpix_account: Any) -> None:
    job = Job.objects.create(tensorpix_id=999_999, status=JobStatus.PROCESSING)

    polling.poll_due_jobs()

    job.refresh_from_db()
    assert job.missing_remote
    assert "404" in job.last_sync_error
    event = job.events.get()
    assert event.kind == JobEventKind.MISSING_REMOTE
    assert "404" in event.message
    job.next_poll_at = None
    job.save()
    assert polling.poll_due_jobs().claimed == 0


def test_refused_key_stops_the_account_after_one_request(
    tensorpix_account: Any, settings: Any
) -> None:
    tensorpix_account.seed_jobs(5, status=PROCESSING)
    import_jobs(tensorpix_account)
    settings.TENSORPIX = {**settings.TENSORPIX, "API_KEY": "revoked-key"}
    tensorpix_account.clear_requests()

    polling.poll_due_jobs()

    assert len(tensorpix_account.requests) == 1
    assert {record.status for record in tensorpix_account.requests} == {401}
    jobs = Job.objects.all()
    assert all("refused the API key" in job.last_sync_error for job in jobs)
    assert JobEvent.objects.filter(kind=JobEventKind.POLL_ERROR).count() == 5
    assert "revoked-key" not in jobs[0].last_sync_error
    Job.objects.update(next_poll_at=None)
    assert polling.poll_due_jobs().claimed == 0
    assert len(tensorpix_account.requests) == 1


# -- stall deadline ----------------------------------------------------------------------


def test_job_active_past_the_deadline_is_stalled_once(
    tensorpix_account: Any, settings: Any, received: list[Any]
) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "POLL_STALL_AFTER": 600.0, "POLL_JITTER": 0.0}
    tensorpix_account.max_active_jobs = 0
    tensorpix_account.seed_jobs(1, status=IN_QUEUE)
    import_jobs(tensorpix_account)
    Job.objects.update(started=timezone.now() - timedelta(hours=1))

    polling.poll_due_jobs()
    Job.objects.update(next_poll_at=None)
    polling.poll_due_jobs()

    job = Job.objects.get()
    assert job.stalled_at is not None
    stalled = [kwargs for name, kwargs in received if name == "job_stalled"]
    assert len(stalled) == 1
    assert stalled[0]["job"].pk == job.pk
    assert stalled[0]["event"].kind == JobEventKind.STALLED
    assert job.next_poll_at is not None
    assert (job.next_poll_at - timezone.now()).total_seconds() > 3000


# -- durable signals ---------------------------------------------------------------------


def test_every_transition_signal_carries_its_event(
    tensorpix_account: Any, received: list[Any]
) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    received.clear()
    tensorpix_account.advance(24 * 3600)

    polling.poll_due_jobs()

    names = [name for name, _ in received]
    assert names.count("job_status_changed") == 1
    assert names.count("job_finished") == 1
    event = JobEvent.objects.get(kind=JobEventKind.STATUS, new_value=str(FINISHED))
    for name, kwargs in received:
        if name in ("job_status_changed", "job_finished"):
            assert kwargs["event"].pk == event.pk
    assert event.dispatched_at is not None
    assert event.dispatch_lease_until is None


def test_progress_signal_reports_old_and_new_progress(
    tensorpix_account: Any, received: list[Any]
) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    old = Job.objects.get().processing_progress
    received.clear()
    tensorpix_account.advance(5)

    polling.poll_due_jobs()

    (progress,) = [kwargs for name, kwargs in received if name == "job_progress"]
    assert progress["old_progress"] == old
    assert progress["new_progress"] > old


def test_signals_left_undone_by_a_crash_are_sent_by_a_later_sweep(
    tensorpix_account: Any, received: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.advance(24 * 3600)
    received.clear()
    # The process dies after the commit, before it sends anything.
    monkeypatch.setattr(dispatch, "dispatch_on_commit", lambda items, using: None)
    polling.poll_due_jobs()
    monkeypatch.undo()
    received[:] = [call for call in received if call[0] != "job_progress"]
    assert received == []
    event = JobEvent.objects.get(kind=JobEventKind.STATUS, new_value=str(FINISHED))
    assert event.dispatched_at is None

    # Within the dead process's lease, nobody else sends them (it might still).
    assert dispatch.dispatch_pending() == 0
    later = timezone.now() + timedelta(seconds=121)
    assert dispatch.dispatch_pending(now=later) == 1
    assert dispatch.dispatch_pending(now=later + timedelta(seconds=500)) == 0

    names = [name for name, _ in received]
    assert names == ["job_status_changed", "job_finished"]
    assert all(kwargs["event"].pk == event.pk for _, kwargs in received)
    assert received[0][1]["old_status"] == JobStatus.PROCESSING
    assert received[0][1]["created"] is False
    event.refresh_from_db()
    assert event.dispatched_at is not None


def test_failing_receiver_does_not_stop_the_others(
    tensorpix_account: Any, received: list[Any]
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.job_status_changed.connect(broken, weak=False)
    try:
        tensorpix_account.seed_jobs(1, status=PROCESSING)
        import_jobs(tensorpix_account)
        tensorpix_account.advance(24 * 3600)
        received.clear()
        polling.poll_due_jobs()
    finally:
        signals.job_status_changed.disconnect(broken)
    assert "job_finished" in [name for name, _ in received]
    assert JobEvent.objects.filter(dispatched_at__isnull=True, kind="status").count() == 0


# -- refresh_job and Job.wait -------------------------------------------------------------


def test_refresh_job_polls_now_and_returns_the_fresh_row(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs(tensorpix_account)
    tensorpix_account.advance(24 * 3600)

    job = polling.refresh_job(Job.objects.get())

    assert job.status == JobStatus.FINISHED
    assert job.poll_lease_owner == ""


def test_wait_returns_the_finished_job() -> None:
    with TensorPixEmulator(speed=2000.0) as emulator:
        emulator.seed_jobs(1, status=PROCESSING)
        _point_default_account_at(emulator)
        import_jobs(emulator)
        job = Job.objects.get().wait(timeout=30, poll_interval=0.05)
    assert job.status == JobStatus.FINISHED


def test_wait_raises_on_timeout(tensorpix_account: Any) -> None:
    tensorpix_account.max_active_jobs = 0
    tensorpix_account.seed_jobs(1, status=IN_QUEUE)
    import_jobs(tensorpix_account)

    with pytest.raises(TimeoutError, match="In Queue"):
        Job.objects.get().wait(timeout=0.2, poll_interval=0.05)


def _point_default_account_at(emulator: TensorPixEmulator) -> None:
    from django.conf import settings

    from django_tensorpix.conf import tensorpix_settings

    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "API_KEY": emulator.api_key,
        "BASE_URL": emulator.base_url,
    }
    tensorpix_settings.reload()


# -- the due query at scale ----------------------------------------------------------------


@pytest.mark.skipif(
    "postgres" not in __import__("os").environ.get("DATABASE_URL", ""),
    reason="EXPLAIN of PostgreSQL's planner",
)
def test_due_query_uses_the_partial_index_with_a_million_finished_jobs() -> None:
    table = Job._meta.db_table
    with connection.cursor() as cursor:
        insert = f"""
            INSERT INTO {table} (account, remote_data, missing_remote, tensorpix_id, status,
                description, codec, container, chroma_subsampling, video_url,
                local_created_at, submission_state, submission_attempts,
                last_submission_error, poll_failures, last_sync_error, archived_file,
                poll_lease_owner)
            SELECT 'default', '{{}}', false, n, CASE WHEN n % 1000 = 0 THEN 1 ELSE 2 END,
                '', '', '', '', '', now(), 'submitted', 1, '', 0, '', '', ''
            FROM generate_series(1, 1000000) AS n
            """  # noqa: S608 - the table name is the model's own
        cursor.execute(insert)
        cursor.execute(f"ANALYZE {table}")
    queryset = Job.objects.due_for_poll().values_list("pk", flat=True)[:500]
    plan = queryset.explain()
    assert "tensorpix_job_due" in plan, plan
    assert "Seq Scan" not in plan, plan
