"""Keeping active jobs in sync by polling TensorPix: when to poll, who polls, and how.

TensorPix has no webhooks, so this is how a project learns that a job moved. Three
promises shape the code:

* **Prompt and cheap.** Each job has its own schedule (:func:`next_poll_delay`): a job
  In Queue is polled at a calm interval, a Processing one from its ``eta_s`` and
  progress (sparse early, tighter near the expected end), a terminal one never again.
  When several jobs of one account are due, one sweep reads them through the jobs list
  if that costs fewer requests than one GET each (:func:`choose_listing`).
* **Safe with many workers.** A sweep claims due jobs with a conditional ``UPDATE`` that
  sets a lease (``poll_lease_until``, ``poll_lease_owner``): two workers never refresh
  the same job at once (a sweep gives back, unrefreshed, what it has not reached when
  half its lease is gone), no HTTP call runs inside a transaction, and a worker killed
  mid-refresh delays its jobs by at most one lease. It works alike on PostgreSQL and
  SQLite. Writes go through the sync, which is monotonic and locks rows in order, so a
  late answer never undoes a newer one.
* **Bounded on errors.** A transient error backs the job off exponentially; a 429
  pauses the whole account until its ``Retry-After`` (shared by every worker through
  :class:`~django_tensorpix.models.AccountPollState`); a 404 stops polling that job
  (``missing_remote``), a refused key (401/403) the whole account for
  ``POLL_AUTH_PAUSE`` seconds, after one request. Each records why in
  ``last_sync_error`` and an event.

The status itself changes only in :func:`django_tensorpix.sync.decide_transition`.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import ImproperlyConfiguredAccount, tensorpix_settings
from django_tensorpix.enums import JobEventKind, JobStatus
from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    MalformedPayload,
    MalformedResponse,
    NotFound,
    RateLimited,
    TensorPixError,
    TransientError,
)
from django_tensorpix.models import AccountPollState, Job, JobEvent
from django_tensorpix.sync import sync_job, sync_jobs
from django_tensorpix.sync.dispatch import dispatch_lease, dispatch_on_commit, dispatch_pending

logger = logging.getLogger(__name__)

# A Processing job is polled again after this share of the time it is expected to need:
# never past its expected end even when eta_s overstates the rest by 1/share (TensorPix
# warns that eta_s "can fluctuate a lot"), and about log2(duration / floor) polls in all.
PROCESSING_SHARE = 0.5
# Transient failures in a row after which a sweep stops sending GETs for an account and
# backs its remaining jobs off: when TensorPix is down, a sweep costs a few requests, not
# one timeout per due job.
ACCOUNT_FAILURES_BEFORE_BACKOFF = 3
PAUSE_RATE_LIMIT = "rate_limit"
PAUSE_AUTH = "auth"


# -- the schedule ----------------------------------------------------------------------


def expected_remaining(job: Job, now: datetime) -> float | None:
    """Seconds a Processing job should still need, or ``None`` without any clue.

    The smaller of TensorPix's ``eta_s`` and what the progress made since the sync saw
    the job start processing predicts: both err, and polling early only costs a request
    while polling late costs lag.
    """
    estimates = []
    if job.eta_s is not None and job.eta_s >= 0:
        estimates.append(float(job.eta_s))
    progress = job.processing_progress
    if progress and 0 < progress < 1 and job.status_changed_at is not None:
        elapsed = (now - job.status_changed_at).total_seconds()
        if elapsed > 0:
            estimates.append(elapsed * (1 - progress) / progress)
    return min(estimates) if estimates else None


def next_poll_delay(job: Job, now: datetime, rng: random.Random | None = None) -> float | None:
    """Seconds until ``job`` should be polled again; ``None`` when it never should.

    In Queue (or a status this version does not know): ``POLL_QUEUED_INTERVAL``.
    Processing: :data:`PROCESSING_SHARE` of :func:`expected_remaining`. Stalled:
    ``POLL_STALLED_INTERVAL``. Every wait is spread by ``POLL_JITTER`` and kept between
    ``POLL_MIN_INTERVAL`` and ``POLL_MAX_INTERVAL`` (the stalled interval may exceed it).
    """
    if not job.is_active or job.missing_remote:
        return None
    settings = tensorpix_settings
    floor, ceiling = float(settings.POLL_MIN_INTERVAL), float(settings.POLL_MAX_INTERVAL)
    if job.stalled_at is not None:
        base = float(settings.POLL_STALLED_INTERVAL)
        ceiling = max(ceiling, base)
    elif job.status == JobStatus.PROCESSING:
        remaining = expected_remaining(job, now)
        base = float(settings.POLL_QUEUED_INTERVAL) if remaining is None else remaining
        base *= PROCESSING_SHARE
    else:
        base = float(settings.POLL_QUEUED_INTERVAL)
    jitter = float(settings.POLL_JITTER)
    base *= (rng or random).uniform(1 - jitter, 1 + jitter)
    return min(max(base, floor), ceiling)


def error_backoff(failures: int, rng: random.Random | None = None) -> float:
    """Seconds before polling a job again after ``failures`` failed polls in a row."""
    floor = tensorpix_settings.POLL_MIN_INTERVAL
    ceiling = tensorpix_settings.POLL_ERROR_BACKOFF_MAX
    wait = min(floor * 2.0 ** min(failures, 32), ceiling)
    return (rng or random).uniform(wait / 2, wait)


def is_past_stall_deadline(job: Job, now: datetime) -> bool:
    """Whether an active job has been active longer than ``POLL_STALL_AFTER`` allows.

    Counted from TensorPix's ``started`` (when the job was created there), or from the
    local row's creation when TensorPix has not said.
    """
    since = job.started or job.local_created_at
    deadline = timedelta(seconds=tensorpix_settings.POLL_STALL_AFTER)
    return job.is_active and since is not None and now - since > deadline


# -- choosing between the list and one GET per job ------------------------------------


def choose_listing(due: int, listed_count: int | None, page_size: int) -> bool:
    """Whether reading the jobs list is expected to cost fewer requests than ``due`` GETs.

    The list has no status filter and no documented order, so the worst case counts:
    every page. ``listed_count`` is how many jobs the account's list held last time.
    """
    if due < 2 or listed_count is None:
        return False
    return math.ceil(max(listed_count, 1) / page_size) < due


# -- the sweep --------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What one sweep did; ``requests`` counts the HTTP requests it sent to TensorPix."""

    claimed: int = 0
    refreshed: list[Job] = field(default_factory=list)
    failed: int = 0
    requests: int = 0
    listed: int = 0
    dispatched: int = 0


def poll_due_jobs(*, limit: int | None = None) -> SweepResult:
    """One sweep: resend leftover signals, claim due jobs, refresh them, reschedule them.

    Safe to run from many workers at once and to replay: a job is claimed by one sweep
    only, and a sweep that finds nothing due costs one indexed query.
    """
    result = SweepResult(dispatched=dispatch_pending())
    token, jobs = claim_due_jobs(limit=limit)
    stop_at = time.monotonic() + tensorpix_settings.POLL_LEASE / 2
    result.claimed = len(jobs)
    by_account: dict[str, list[Job]] = {}
    for job in jobs:
        by_account.setdefault(job.account, []).append(job)
    for account, account_jobs in by_account.items():
        _AccountSweep(account, account_jobs, token, result, stop_at=stop_at).run()
    return result


def claim_due_jobs(
    *, limit: int | None = None, now: datetime | None = None
) -> tuple[str, list[Job]]:
    """Lease the due jobs of accounts that are not paused; return the lease token and jobs.

    The ``UPDATE`` repeats the due condition, so of two workers racing for a job only the
    first gets it (PostgreSQL re-checks the condition on the row the other one wrote;
    SQLite serialises writers). No transaction stays open afterwards.
    """
    now = now or timezone.now()
    limit = tensorpix_settings.POLL_BATCH_SIZE if limit is None else limit
    token = secrets.token_hex(16)
    due = Job.objects.due_for_poll(now).exclude(account__in=paused_accounts(now))
    pks = list(due.values_list("pk", flat=True)[:limit])
    if not pks:
        return token, []
    lease_until = now + timedelta(seconds=tensorpix_settings.POLL_LEASE)
    Job.objects.due_for_poll(now).filter(pk__in=pks).order_by().update(
        poll_lease_until=lease_until, poll_lease_owner=token
    )
    jobs = list(Job.objects.filter(pk__in=pks, poll_lease_owner=token).order_by("pk"))
    return token, jobs


def paused_accounts(now: datetime) -> list[str]:
    return list(
        AccountPollState.objects.filter(paused_until__gt=now).values_list("account", flat=True)
    )


class _AccountSweep:
    """Refreshing the claimed jobs of one account, then scheduling and releasing them."""

    def __init__(
        self,
        account: str,
        jobs: list[Job],
        token: str,
        result: SweepResult,
        *,
        stop_at: float | None = None,
    ) -> None:
        self.account = account
        self.token = token
        self.result = result
        self.pending = {job.tensorpix_id: job for job in jobs if job.tensorpix_id is not None}
        # (time.monotonic) Past this, the claim's lease is half gone: the jobs not
        # refreshed yet are given back rather than risk a second worker polling them too.
        self.stop_at = stop_at

    def _out_of_time(self) -> bool:
        return self.stop_at is not None and time.monotonic() > self.stop_at

    def run(self) -> None:
        try:
            client = TensorPixClient.for_account(self.account, max_retries=0)
        except ImproperlyConfiguredAccount as error:
            self._pause_all(str(error), tensorpix_settings.POLL_AUTH_PAUSE)
            return
        state = AccountPollState.objects.filter(account=self.account).first()
        if state is not None and state.paused_until and state.paused_until > timezone.now():
            # Paused by another worker since the claim: give the jobs back untouched.
            self._release_at(list(self.pending.values()), state.paused_until)
            return
        with client:
            try:
                listed_count = state.listed_count if state else None
                if listed_count is None and len(self.pending) > 1:
                    # Not listed by a sweep yet: the rows a sync imported are a fair guess.
                    listed_count = Job.objects.filter(
                        account=self.account, tensorpix_id__isnull=False
                    ).count()
                if choose_listing(len(self.pending), listed_count, tensorpix_settings.PAGE_SIZE):
                    self._refresh_through_list(client)
                self._refresh_one_by_one(client)
            except RateLimited as error:
                self._rate_limited(error)
            except AuthenticationError as error:
                self._refused(error)

    def _refresh_through_list(self, client: TensorPixClient) -> None:
        """Page through the list until every claimed job was seen, or GETs become cheaper.

        Relies on neither the list's order nor its length staying put: what is not seen
        is fetched one by one afterwards.
        """
        page_size = tensorpix_settings.PAGE_SIZE
        read = 0
        try:
            for page in client.iter_job_pages():
                if self._out_of_time():
                    break
                self.result.requests += 1
                self.result.listed += 1
                read += len(page)
                if page.total is not None:
                    _remember_listed_count(self.account, page.total)
                mine = [dict(payload) for payload in page if _payload_id(payload) in self.pending]
                self._sync_payloads(mine)
                left = (page.total or 0) - read
                if not self.pending or math.ceil(max(left, 0) / page_size) >= len(self.pending):
                    break
        except (TransientError, MalformedResponse) as error:
            # The unseen jobs are fetched one by one below; the GETs hit the same trouble
            # (and back off) if TensorPix is really down.
            logger.warning("Listing jobs of account %r failed: %s", self.account, error)
        except APIError as error:
            if isinstance(error, RateLimited | AuthenticationError):
                raise
            logger.warning("Listing jobs of account %r failed: %s", self.account, error)

    def _refresh_one_by_one(self, client: TensorPixClient) -> None:
        """GET each job still pending; after a few transient failures in a row, back off
        the rest of the account without a request (TensorPix is probably down)."""
        failures_in_a_row, last_error = 0, ""
        for tensorpix_id, job in list(self.pending.items()):
            if self._out_of_time():
                # Due again at once: the next sweep takes them with a fresh lease.
                self._release_at(list(self.pending.values()), timezone.now())
                return
            if failures_in_a_row >= ACCOUNT_FAILURES_BEFORE_BACKOFF:
                del self.pending[tensorpix_id]
                self._failed(job, TransientError(f"Not polled, TensorPix failing: {last_error}"))
                continue
            self.result.requests += 1
            try:
                payload = client.get_job(tensorpix_id)
            except NotFound as error:
                del self.pending[tensorpix_id]
                _mark_gone(job, self.token, error)
                self.result.failed += 1
                continue
            except (RateLimited, AuthenticationError):
                raise
            except (TransientError, MalformedResponse, APIError) as error:
                del self.pending[tensorpix_id]
                self._failed(job, error)
                failures_in_a_row += 1
                last_error = str(error)
                continue
            failures_in_a_row = 0
            if _payload_id(payload) != tensorpix_id:
                del self.pending[tensorpix_id]
                self._failed(
                    job, MalformedResponse(f"GET of job {tensorpix_id} returned another id.")
                )
                continue
            self._sync_payloads([dict(payload)])

    def _sync_payloads(self, payloads: list[dict[str, Any]]) -> None:
        """Sync what was read, in one batch; one by one if the batch holds a bad payload.

        ``payloads`` are answers for claimed jobs only (their ``id`` is a pending key).
        """
        if not payloads:
            return
        try:
            sync_jobs(payloads, account=self.account)
            synced = [self.pending.pop(payload["id"]) for payload in payloads]
        except MalformedPayload:
            synced = []
            for payload in payloads:
                job = self.pending.pop(payload["id"])
                try:
                    sync_job(payload, account=self.account)
                except MalformedPayload as error:
                    self._failed(job, error)
                else:
                    synced.append(job)
        self._reschedule(synced)

    def _reschedule(self, jobs: list[Job]) -> None:
        """Write each refreshed job's next poll time and give up its lease."""
        now = timezone.now()
        fresh = list(Job.objects.filter(pk__in=[job.pk for job in jobs]).order_by("pk"))
        stalled = []
        for job in fresh:
            if job.stalled_at is None and is_past_stall_deadline(job, now):
                stalled.append(job)
                job.stalled_at = now
            delay = next_poll_delay(job, now)
            job.next_poll_at = None if delay is None else now + timedelta(seconds=delay)
            job.poll_lease_until = None
            job.poll_lease_owner = ""
            job.poll_failures = 0
            job.last_sync_error = ""
        plain = [job for job in fresh if job not in stalled]
        if plain:
            Job.objects.filter(poll_lease_owner=self.token).bulk_update(plain, RESCHEDULE_FIELDS)
        for job in stalled:
            _mark_stalled(job, self.token, now)
        self.result.refreshed.extend(fresh)

    def _failed(self, job: Job, error: Exception) -> None:
        logger.warning("Polling %s failed: %s", job, error)
        self.result.failed += 1
        failures = job.poll_failures + 1
        Job.objects.filter(pk=job.pk, poll_lease_owner=self.token).update(
            poll_failures=failures,
            last_sync_error=str(error),
            next_poll_at=timezone.now() + timedelta(seconds=error_backoff(failures)),
            poll_lease_until=None,
            poll_lease_owner="",
        )

    def _rate_limited(self, error: RateLimited) -> None:
        wait = error.retry_after
        if wait is None:
            wait = tensorpix_settings.POLL_RATE_LIMIT_PAUSE
        logger.warning("TensorPix throttles account %r: pausing %.0f s", self.account, wait)
        until = pause_account(self.account, wait, PAUSE_RATE_LIMIT, str(error))
        self._release_at(list(self.pending.values()), until)

    def _refused(self, error: AuthenticationError) -> None:
        """A refused key stops the account's polling after this one request, and says why."""
        message = f"TensorPix refused the API key of account {self.account!r}: {error}"
        logger.error("%s; pausing its polling", message)
        self._pause_all(message, tensorpix_settings.POLL_AUTH_PAUSE)

    def _pause_all(self, message: str, seconds: float) -> None:
        until = pause_account(self.account, seconds, PAUSE_AUTH, message)
        jobs = list(self.pending.values())
        self.pending.clear()
        self.result.failed += len(jobs)
        first_time = [job for job in jobs if job.last_sync_error != message]
        with transaction.atomic(using=router.db_for_write(Job)):
            Job.objects.filter(pk__in=[job.pk for job in jobs], poll_lease_owner=self.token).update(
                last_sync_error=message,
                next_poll_at=until,
                poll_lease_until=None,
                poll_lease_owner="",
            )
            JobEvent.objects.bulk_create(
                JobEvent(job=job, kind=JobEventKind.POLL_ERROR, message=message)
                for job in first_time
            )

    def _release_at(self, jobs: Iterable[Job], when: datetime) -> None:
        pks = [job.pk for job in jobs]
        self.pending.clear()
        Job.objects.filter(pk__in=pks, poll_lease_owner=self.token).update(
            next_poll_at=when, poll_lease_until=None, poll_lease_owner=""
        )


RESCHEDULE_FIELDS = [
    "next_poll_at",
    "poll_lease_until",
    "poll_lease_owner",
    "poll_failures",
    "last_sync_error",
]


def _payload_id(payload: Any) -> int | None:
    value = payload.get("id") if isinstance(payload, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _remember_listed_count(account: str, count: int) -> None:
    state, _ = AccountPollState.objects.get_or_create(account=account)
    if state.listed_count != count:
        AccountPollState.objects.filter(pk=state.pk).update(listed_count=count)


def pause_account(account: str, seconds: float, reason: str, message: str) -> datetime:
    """Stop polling ``account`` for ``seconds`` in every worker; return until when.

    A pause is only ever extended here, never shortened by a shorter one.
    """
    until = timezone.now() + timedelta(seconds=seconds)
    state, _ = AccountPollState.objects.get_or_create(account=account)
    AccountPollState.objects.filter(pk=state.pk).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until, pause_reason=reason, last_error=message)
    state.refresh_from_db()
    return state.paused_until or until


def _mark_gone(job: Job, token: str, error: NotFound) -> None:
    """TensorPix no longer knows the job (deleted there): stop polling it, say why."""
    message = f"TensorPix answered 404 for job {job.tensorpix_id}: polling stopped."
    logger.warning("%s (%s)", message, error)
    now = timezone.now()
    with transaction.atomic(using=router.db_for_write(Job)):
        updated = Job.objects.filter(pk=job.pk, poll_lease_owner=token).update(
            missing_remote=True,
            missing_since=now,
            last_sync_error=message,
            next_poll_at=None,
            poll_lease_until=None,
            poll_lease_owner="",
        )
        if updated:
            JobEvent.objects.create(
                job=job, at=now, kind=JobEventKind.MISSING_REMOTE, message=message
            )


def _mark_stalled(job: Job, token: str, now: datetime) -> None:
    """Record that a job is active past the deadline; ``job_stalled`` once it commits."""
    using = router.db_for_write(Job)
    with transaction.atomic(using=using):
        updated = (
            Job.objects.filter(pk=job.pk, poll_lease_owner=token, stalled_at__isnull=True)
            .order_by()
            .update(stalled_at=now, **{name: getattr(job, name) for name in RESCHEDULE_FIELDS})
        )
        if not updated:
            return
        event = JobEvent.objects.create(
            job=job,
            at=now,
            kind=JobEventKind.STALLED,
            message=f"Still active after {tensorpix_settings.POLL_STALL_AFTER} s.",
            dispatch_lease_until=dispatch_lease(now),
        )
        dispatch_on_commit([(event, job, False)], using=using)


# -- one job, now ----------------------------------------------------------------------


def refresh_job(job: Job) -> Job:
    """Poll one job now (GET, sync, reschedule) and return its fresh row.

    For the admin's and the REST API's "refresh" and for :meth:`Job.wait`. Lease-safe:
    if a sweep holds the job right now, its row is returned as it is (the sweep is
    refreshing it). Honours an account paused by a 429 (raises :class:`RateLimited`
    without a request) but tries a paused refused key again: the operator may have
    fixed it. Errors are recorded like a sweep records them, then raised.
    """
    if job.tensorpix_id is None:
        raise ValueError(f"{job} was not submitted to TensorPix yet: nothing to poll.")
    now = timezone.now()
    state = AccountPollState.objects.filter(account=job.account).first()
    if (
        state is not None
        and state.pause_reason == PAUSE_RATE_LIMIT
        and state.paused_until is not None
        and state.paused_until > now
    ):
        wait = (state.paused_until - now).total_seconds()
        raise RateLimited(
            f"Polling of account {job.account!r} is paused for {wait:.0f} s after a 429.",
            retry_after=wait,
            status=429,
        )
    token = secrets.token_hex(16)
    lease_until = now + timedelta(seconds=tensorpix_settings.POLL_LEASE)
    claimed = (
        Job.objects.filter(pk=job.pk)
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
        .update(poll_lease_until=lease_until, poll_lease_owner=token)
    )
    if not claimed:
        return Job.objects.get(pk=job.pk)
    claimed_job = Job.objects.get(pk=job.pk)
    result = SweepResult()
    sweep = _AccountSweep(job.account, [claimed_job], token, result)
    error: TensorPixError | None = None
    try:
        client = TensorPixClient.for_account(job.account, max_retries=0)
    except ImproperlyConfiguredAccount:
        sweep._release_at([claimed_job], claimed_job.next_poll_at or now)
        raise
    with client:
        try:
            payload = client.get_job(job.tensorpix_id)
        except NotFound as exc:
            _mark_gone(claimed_job, token, exc)
            error = exc
        except RateLimited as exc:
            sweep._rate_limited(exc)
            error = exc
        except AuthenticationError as exc:
            sweep._refused(exc)
            error = exc
        except (TransientError, MalformedResponse, APIError) as exc:
            sweep._failed(claimed_job, exc)
            error = exc
        else:
            try:
                sync_job(payload, account=job.account)
            except MalformedPayload as exc:
                sweep._failed(claimed_job, exc)
                error = exc
            else:
                sweep._reschedule([claimed_job])
                AccountPollState.objects.filter(
                    account=job.account, pause_reason=PAUSE_AUTH
                ).update(paused_until=None, pause_reason="", last_error="")
    if error is not None:
        raise error
    return Job.objects.get(pk=job.pk)


def wait_for_job(job: Job, *, timeout: float, poll_interval: float | None = None) -> Job:
    """:meth:`Job.wait`: refresh until the job is final; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if job.tensorpix_id is None:
            job.refresh_from_db()
        else:
            try:
                job = refresh_job(job)
            except (TransientError, RateLimited, MalformedResponse, MalformedPayload) as error:
                logger.info("Waiting for %s: %s", job, error)
                job.refresh_from_db()
        if job.is_terminal:
            return job
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"{job} is still {job.get_status_display() or 'not submitted'} after {timeout:g} s."
            )
        interval = poll_interval
        if interval is None:
            interval = next_poll_delay(job, timezone.now()) or float(
                tensorpix_settings.POLL_MIN_INTERVAL
            )
        time.sleep(min(interval, left))
