"""How a job reaches TensorPix: at most once, durably, whatever fails on the way.

The machinery behind :mod:`django_tensorpix.services` (which host code calls, and which
re-exports this module's public functions): the Celery tasks run :func:`submit_job` and
:func:`upload_pending_video`, beat runs the sweeps :func:`submit_pending_jobs` and
:func:`upload_pending_videos`.

* :func:`submit_job` commits ``submitting`` before the create request leaves. A request
  whose outcome is unknown (:class:`~django_tensorpix.exceptions.OutcomeUnknown`) moves the
  job to ``uncertain``; it is reconciled (the whole job list searched for what it may have
  created) before anything is sent again, and resent only when nothing can match. A
  sweep reads each account's job list once for all the jobs it reconciles.
* Submissions of one source (a URL, an uploaded video) are serialised by a lease on a
  :class:`~django_tensorpix.models.SubmissionLock` row.
* A job's input file is uploaded first (its Credits checked before), under the same
  lease; a lost upload answer is looked for by name and size before uploading again.
* TensorPix's refusals end in ``rejected``, with its message, an event and the
  ``job_submit_failed`` signal; they are never retried.

:func:`submit_job` must run outside a transaction (a Celery task, a management command):
its state changes have to be committed before each request leaves, so inside an
``atomic`` block (``ATOMIC_REQUESTS`` included) it raises ``RuntimeError``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_tensorpix import signals
from django_tensorpix._http import describe_body
from django_tensorpix.client import JobPayload, TensorPixClient
from django_tensorpix.conf import DEFAULT_ACCOUNT, tensorpix_settings
from django_tensorpix.enums import JobEventKind, SubmissionState
from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    CreditsTooLow,
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TensorPixError,
    TransientError,
)
from django_tensorpix.models import Job, JobEvent, SubmissionLock, Video, upload_storage
from django_tensorpix.sync import sync_job, sync_video

logger = logging.getLogger(__name__)

__all__ = [
    "check_credits",
    "submit_job",
    "submit_pending_jobs",
    "upload_pending_video",
    "upload_pending_videos",
]

# States in which a job still has to reach TensorPix, and which submit_job moves on.
AWAITING = (
    SubmissionState.PENDING,
    SubmissionState.UPLOADING,
    SubmissionState.SUBMITTING,
    SubmissionState.UNCERTAIN,
)
# TensorPix's and our clocks differ; a remote job "created since the attempt" is looked
# for from this long before the attempt.
CLOCK_SKEW = timedelta(minutes=5)


def submit_pending_jobs(*, limit: int = 100) -> int:
    """Re-drive jobs whose submission stalled; returns how many were driven.

    Pending or submitting past ``SUBMIT_GRACE_PERIOD`` (a lost task message, a killed
    worker), uncertain past ``RECONCILE_DELAY``, uploading (whose readiness this follows),
    and submitted jobs not synced yet. Each goes through :func:`submit_job`, which is
    safe against a duplicate run. The jobs to reconcile share one reading of their
    account's job list (at most one per account and sweep, read when first needed): with
    many lost answers, a sweep costs a few pages, not a few pages per job.
    """
    now = timezone.now()
    grace = now - timedelta(seconds=tensorpix_settings.SUBMIT_GRACE_PERIOD)
    reconcile = now - timedelta(seconds=tensorpix_settings.RECONCILE_DELAY)
    due = Job.objects.filter(
        Q(submission_state=SubmissionState.PENDING, local_created_at__lte=grace)
        | Q(submission_state=SubmissionState.SUBMITTING, submitted_at__lte=grace)
        | Q(submission_state=SubmissionState.UNCERTAIN, submitted_at__lte=reconcile)
        | Q(submission_state=SubmissionState.UPLOADING)
        | Q(
            submission_state=SubmissionState.SUBMITTED,
            tensorpix_id__isnull=False,
            status__isnull=True,
            missing_remote=False,
        )
    ).order_by("local_created_at", "pk")
    pks = list(due.values_list("pk", flat=True)[:limit])
    job_lists = _JobLists()
    for pk in pks:
        job = Job.objects.filter(pk=pk).first()
        if job is None:
            continue
        try:
            _submit(job, job_lists)
        except TensorPixError as error:
            logger.warning("Submitting job %s failed for now: %s", pk, error)
    return len(pks)


def submit_job(job: Job) -> Job:
    """Move ``job`` as far towards TensorPix as it can go now; returns it refreshed.

    Idempotent and safe to run twice at once: the second run finds the source's lease
    taken (or the job already submitted) and does nothing. Never blocks waiting: an upload
    that TensorPix is still processing, or a lost answer too recent to reconcile, is left
    for :func:`submit_pending_jobs`.
    """
    return _submit(job, None)


def _submit(job: Job, job_lists: _JobLists | None) -> Job:
    """:func:`submit_job`, reconciling against ``job_lists`` (a sweep's) when given."""
    job.refresh_from_db()
    if job.submission_state == SubmissionState.SUBMITTED:
        if job.tensorpix_id is not None and job.status is None:
            with TensorPixClient.for_account(job.account) as client:
                sync_linked_job(job, client)
        job.refresh_from_db()
        return job
    if job.submission_state not in AWAITING:
        return job
    with _source_lease(job.account, _source_key(job)) as held:
        if not held:
            logger.info("Job %s: its source is being submitted by another worker.", job.pk)
            return job
        job.refresh_from_db()
        if job.submission_state in AWAITING:
            with TensorPixClient.for_account(job.account) as client:
                _drive(job, client, job_lists)
    job.refresh_from_db()
    return job


def _drive(job: Job, client: TensorPixClient, job_lists: _JobLists | None) -> None:
    if job.input_video_id is not None and not _input_ready(job, client):
        return
    if job.submission_state in (SubmissionState.SUBMITTING, SubmissionState.UNCERTAIN):
        # Under the lease, "submitting" means an earlier attempt died mid-request.
        if job.submission_state == SubmissionState.SUBMITTING:
            _set_state(job, SubmissionState.UNCERTAIN, "The last attempt ended mid-request.")
        if not _reconcile(job, client, job_lists):
            return
    if not _credits_allow(job, client):
        return
    _send_create(job, client)


def _source_key(job: Job) -> str:
    if job.input_video_id is not None:
        return f"video:{job.input_video_id}"
    return "url:" + hashlib.sha256(job.video_url.encode()).hexdigest()


def _input_video_id(job: Job) -> int | None:
    """TensorPix's id of the job's uploaded input (``None`` before the upload)."""
    video_id: int | None = Video.objects.values_list("tensorpix_id", flat=True).get(jobs=job)
    return video_id


@contextmanager
def _source_lease(account: str, source: str) -> Iterator[bool]:
    """Hold ``source`` for at most ``SUBMIT_LEASE`` seconds; yields whether it was free.

    Claimed by a conditional ``UPDATE`` (works alike on PostgreSQL and SQLite) and released
    only by its holder; a killed worker's lease expires.
    """
    try:
        lock, _ = SubmissionLock.objects.get_or_create(account=account, source=source)
    except IntegrityError:
        lock = SubmissionLock.objects.get(account=account, source=source)
    token = uuid.uuid4().hex
    now = timezone.now()
    until = now + timedelta(seconds=tensorpix_settings.SUBMIT_LEASE)
    claimed = (
        SubmissionLock.objects.filter(pk=lock.pk)
        .filter(Q(held_until__isnull=True) | Q(held_until__lt=now))
        .update(held_until=until, holder=token)
    )
    try:
        yield bool(claimed)
    finally:
        if claimed:
            # Deleted, not cleared, so the table holds only sources being submitted.
            SubmissionLock.objects.filter(pk=lock.pk, holder=token).delete()


def _set_state(job: Job, state: str, message: str = "", **fields: Any) -> bool:
    """Move the job from its current state to ``state`` if nobody moved it meanwhile."""
    old = job.submission_state
    moved = Job.objects.filter(pk=job.pk, submission_state=old).update(
        submission_state=state, **fields
    )
    if moved:
        job.submission_state = state
        submission_event(job, old, state, message)
    return bool(moved)


def submission_event(job: Job, old: str, new: str, message: str) -> None:
    JobEvent.objects.create(
        job=job, kind=JobEventKind.SUBMISSION, old_value=old, new_value=new, message=message
    )


def _reject(job: Job, message: str) -> None:
    """TensorPix (or the Credits threshold) refused: final, shown, signalled, never retried."""
    with transaction.atomic():
        if _set_state(job, SubmissionState.REJECTED, message, last_submission_error=message):
            job.last_submission_error = message
            transaction.on_commit(
                partial(signals.job_submit_failed.send_robust, sender=Job, job=job, message=message)
            )
    logger.warning("Job %s was refused: %s", job.pk, message)


def _note_error(job: Job, message: str) -> None:
    Job.objects.filter(pk=job.pk).update(last_submission_error=message)
    job.last_submission_error = message


# -- Uploads -------------------------------------------------------------------------------


def _input_ready(job: Job, client: TensorPixClient) -> bool:
    """Whether the uploaded input is ready for a job; uploads it first when needed."""
    video = Video.objects.get(jobs=job)
    if video.tensorpix_id is None:
        if job.submission_state == SubmissionState.PENDING:
            _set_state(job, SubmissionState.UPLOADING, "Uploading the input video.")
        if video.upload_attempted_at is not None and not _reconcile_upload(job, video, client):
            return False
        # Credits are checked before a (maybe large) upload, not only after it.
        if video.tensorpix_id is None and (
            not _credits_allow(job, client) or not _upload(job, video, client)
        ):
            return False
    try:
        payload = client.get_video(video.tensorpix_id)  # type: ignore[arg-type]
    except NotFound:
        _reject(job, f"The uploaded input video ({video.tensorpix_id}) is gone at TensorPix.")
        return False
    except TransientError as error:
        _note_error(job, str(error))
        return False
    sync_video(payload, account=job.account)
    if payload.get("file") is None:
        return False
    if job.submission_state == SubmissionState.UPLOADING:
        _set_state(job, SubmissionState.PENDING, "The input video is ready at TensorPix.")
    _drop_local_copy(video)
    return True


def _drop_local_copy(video: Video) -> None:
    """Delete the local copy of an input TensorPix now has, when ``DELETE_LOCAL_AFTER_UPLOAD``
    says so."""
    if tensorpix_settings.DELETE_LOCAL_AFTER_UPLOAD and video.local_file.name:
        upload_storage().delete(video.local_file.name)
        Video.objects.filter(pk=video.pk).update(local_file="")


class _UploadFailed(Exception):
    """An upload did not happen; ``final`` when TensorPix refused (never retried)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


def _upload(job: Job, video: Video, client: TensorPixClient) -> bool:
    """Upload a job's input (:func:`_send_upload`); a failure is noted on the job."""
    try:
        _send_upload(video, client)
    except _UploadFailed as failure:
        (_reject if failure.final else _note_error)(job, str(failure))
        return False
    return True


def _send_upload(video: Video, client: TensorPixClient) -> None:
    """Upload the local copy, streamed; the row links the new remote video at once.

    Run under the video's source lease. ``upload_attempted_at`` is committed before the
    request leaves and kept when its outcome is unknown, so the next attempt looks for
    the upload (:func:`_reconcile_upload`) instead of sending it blindly again.
    """
    if not video.local_file.name:
        raise _UploadFailed(
            "The local copy of the input video is gone; it cannot be uploaded.", final=True
        )
    now = timezone.now()
    with transaction.atomic(durable=True):  # committed before the upload leaves
        Video.objects.filter(pk=video.pk).update(upload_attempted_at=now)
    video.upload_attempted_at = now
    try:
        with upload_storage().open(video.local_file.name, "rb") as fileobj:
            payload = client.upload_video(fileobj, video.name)
    except FileNotFoundError:
        Video.objects.filter(pk=video.pk).update(upload_attempted_at=None)
        raise _UploadFailed(
            f"The local copy of the input video ({video.local_file.name}) is gone.", final=True
        ) from None
    except (OutcomeUnknown, MalformedResponse) as error:
        raise _UploadFailed(f"{error} The upload is looked for before being sent again.") from None
    except (RateLimited, AuthenticationError, TransientError) as error:
        Video.objects.filter(pk=video.pk).update(upload_attempted_at=None)
        raise _UploadFailed(str(error)) from None
    except APIError as error:
        raise _UploadFailed(refusal_message(error), final=True) from None
    _link_video(video, payload["id"])
    sync_video(payload, account=video.account)


def _reconcile_upload(job: Job, video: Video, client: TensorPixClient) -> bool:
    """A job's lost upload answer (:func:`_find_upload`), noted on the job."""
    try:
        done = _find_upload(video, client)
    except _UploadFailed as failure:
        _note_error(job, str(failure))
        return False
    if video.tensorpix_id is not None:
        message = f"Found upload {video.tensorpix_id}."
        submission_event(job, job.submission_state, job.submission_state, message)
    return done


def _find_upload(video: Video, client: TensorPixClient) -> bool:
    """After a lost upload answer: link the upload it made, if any. False: not yet known.

    Matched by name and size among videos created since the attempt that no local row
    holds. A duplicate upload costs storage, not Credits, so when none matches (or the
    listing is too long to read whole) the file is uploaded again.
    """
    assert video.upload_attempted_at is not None
    if not _reconcile_due(video.upload_attempted_at):
        return False
    since = video.upload_attempted_at - CLOCK_SKEW
    candidates: list[int] = []
    try:
        for number, page in enumerate(client.iter_video_pages()):
            if number >= tensorpix_settings.RECONCILE_MAX_PAGES:
                break
            candidates += [
                item["id"]
                for item in page
                if item.get("name") == video.name
                and item.get("size") == video.size
                and _created_since(item.get("created_at"), since)
            ]
    except TransientError as error:
        raise _UploadFailed(str(error)) from None
    claimed = set(
        Video.objects.filter(account=video.account, tensorpix_id__in=candidates).values_list(
            "tensorpix_id", flat=True
        )
    )
    free = sorted(set(candidates) - claimed)
    if free:
        _link_video(video, free[0])
    return True


# -- Uploads without a job -----------------------------------------------------------------


def _pending_uploads() -> Q:
    """Videos made by :func:`~django_tensorpix.services.upload_video` that TensorPix does
    not have yet.

    A job's input is uploaded by its submission (Credits checked first), not here.
    """
    return Q(
        tensorpix_id__isnull=True,
        jobs__isnull=True,
        upload_error="",
        remote_deleted_at__isnull=True,
    ) & ~Q(local_file="")


def upload_pending_video(video: Video) -> Video:
    """Upload one video made by :func:`~django_tensorpix.services.upload_video` now, at
    most once; returns it refreshed.

    Shares the lease and the lost-answer handling of a job's input upload, so a duplicate
    task does nothing. A refusal is stored in ``upload_error`` and never retried; a
    transient failure is left for :func:`upload_pending_videos`.
    """
    with _source_lease(video.account, f"video:{video.pk}") as held:
        video.refresh_from_db()
        if not held or not Video.objects.filter(_pending_uploads(), pk=video.pk).exists():
            return video
        with TensorPixClient.for_account(video.account) as client:
            try:
                if video.upload_attempted_at is None or (
                    _find_upload(video, client) and video.tensorpix_id is None
                ):
                    _send_upload(video, client)
            except _UploadFailed as failure:
                if failure.final:
                    Video.objects.filter(pk=video.pk).update(upload_error=str(failure))
                logger.warning("Uploading video %s failed: %s", video.pk, failure)
            else:
                if video.tensorpix_id is not None:
                    _drop_local_copy(video)
    video.refresh_from_db()
    return video


def upload_pending_videos(*, limit: int = 100) -> int:
    """Re-drive uploads whose task message was lost or whose answer was; returns how many."""
    pks = list(
        Video.objects.filter(_pending_uploads()).order_by("pk").values_list("pk", flat=True)[:limit]
    )
    for pk in pks:
        video = Video.objects.filter(pk=pk).first()
        if video is None:
            continue
        try:
            upload_pending_video(video)
        except TensorPixError as error:
            logger.warning("Uploading video %s failed for now: %s", pk, error)
    return len(pks)


def _link_video(video: Video, tensorpix_id: int) -> None:
    Video.objects.filter(pk=video.pk).update(tensorpix_id=tensorpix_id)
    video.tensorpix_id = tensorpix_id


# -- Create requests -----------------------------------------------------------------------


def _credits_allow(job: Job, client: TensorPixClient) -> bool:
    """Read the balance before a paid submission; False when the job must not go now."""
    if job.preview:
        return True  # Free: a preview costs no Credits.
    try:
        check_credits(job.account, client=client)
    except CreditsTooLow as error:
        _reject(job, str(error))
        return False
    except TransientError as error:
        _note_error(job, str(error))
        return False
    return True


def check_credits(
    account: str = DEFAULT_ACCOUNT, *, client: TensorPixClient | None = None
) -> Decimal | None:
    """The balance, compared with ``CREDITS_MIN_BALANCE``; ``None`` when no threshold is set.

    Below it, sends ``credits_low`` and, when ``CREDITS_LOW_ACTION`` is ``"refuse"``,
    raises :class:`~django_tensorpix.exceptions.CreditsTooLow`.
    """
    threshold_setting = tensorpix_settings.CREDITS_MIN_BALANCE
    if threshold_setting is None:
        return None
    threshold = Decimal(str(threshold_setting))
    own_client = client is None
    active = client or TensorPixClient.for_account(account)
    try:
        raw = active.get_balance().get("balance_usd")
    finally:
        if own_client:
            active.close()
    try:
        balance = Decimal(str(raw))
    except InvalidOperation:
        raise MalformedResponse(f"The Credits balance is not a number: {raw!r}.") from None
    if balance < threshold:
        signals.credits_low.send_robust(
            sender=Job, account=account, balance=balance, threshold=threshold
        )
        message = f"The Credits balance ({balance}) is below CREDITS_MIN_BALANCE ({threshold})."
        if tensorpix_settings.CREDITS_LOW_ACTION == "refuse":
            raise CreditsTooLow(
                message + " Top up, then retry the submission.",
                balance=balance,
                threshold=threshold,
            )
        logger.warning("%s Submitting anyway (CREDITS_LOW_ACTION is 'warn').", message)
    return balance


def _send_create(job: Job, client: TensorPixClient) -> None:
    """Commit ``submitting``, send the create request once, and act on its answer."""
    now = timezone.now()
    # Durable: "submitting" must be committed before the request leaves, or a crash
    # mid-request would roll the job back to "pending" and it could be sent twice.
    with transaction.atomic(durable=True):
        sending = _set_state(
            job,
            SubmissionState.SUBMITTING,
            "Sending the job to TensorPix.",
            submitted_at=now,
            submission_attempts=F("submission_attempts") + 1,
        )
    if not sending:
        return
    job.submitted_at = now
    models = list(job.ml_models.values_list("tensorpix_id", flat=True))
    options = job.requested_options()
    try:
        if job.input_video_id is not None:
            video_id = _input_video_id(job)
            assert video_id is not None  # _input_ready() made sure of it
            created: dict[str, Any] = dict(
                client.create_job(input_video=video_id, ml_models=models, **options)
            )
        else:
            for name in ("qscale", "prores_profile"):
                options.pop(name, None)
            created = dict(
                client.create_job_from_url(video_url=job.video_url, ml_models=models, **options)
            )
    except (OutcomeUnknown, MalformedResponse) as error:
        # TensorPix may have created (and billed) the job: reconcile before resending.
        message = f"{error} The job list is searched before anything is sent again."
        _set_state(job, SubmissionState.UNCERTAIN, message, last_submission_error=message)
        return
    except (RateLimited, AuthenticationError, TransientError) as error:
        # A definite answer that nothing was created: try again later.
        _set_state(job, SubmissionState.PENDING, str(error), last_submission_error=str(error))
        return
    except APIError as error:
        _reject(job, refusal_message(error))
        return
    remote_id = created.get("id")
    if isinstance(remote_id, bool) or not isinstance(remote_id, int):
        message = "TensorPix's answer had no job id; the job list is searched instead."
        _set_state(job, SubmissionState.UNCERTAIN, message, last_submission_error=message)
        return
    _link(job, remote_id, f"Created at TensorPix as job {remote_id}.")
    sync_linked_job(job, client)


def refusal_message(error: APIError) -> str:
    """TensorPix's own words for a refusal (its error body, summarised), else our message."""
    return describe_body(error.body) or str(error)


def _link(job: Job, remote_id: int, message: str) -> bool:
    """Make ``job`` the local row of TensorPix's job ``remote_id``.

    A row the full sync imported meanwhile for the same remote job (never submitted from
    here, created after our attempt) is a duplicate mirror of our job: it is removed.
    """
    with transaction.atomic():
        duplicate = Job.objects.filter(
            account=job.account,
            tensorpix_id=remote_id,
            submission_attempts=0,
            local_created_at__gte=job.submitted_at,
        ).exclude(pk=job.pk)
        duplicate.delete()
        linked = Job.objects.filter(pk=job.pk, submission_state=job.submission_state).update(
            tensorpix_id=remote_id,
            submission_state=SubmissionState.SUBMITTED,
            last_submission_error="",
        )
        if linked:
            submission_event(job, job.submission_state, SubmissionState.SUBMITTED, message)
    job.refresh_from_db()
    return bool(linked)


def sync_linked_job(job: Job, client: TensorPixClient) -> None:
    """Read the linked job once and sync it; polling (or the sweep) retries on failure."""
    assert job.tensorpix_id is not None
    try:
        payload = client.get_job(job.tensorpix_id)
        sync_job(payload, account=job.account)
    except TensorPixError as error:
        logger.warning("Job %s: could not read it after linking: %s", job.pk, error)


# -- Reconciliation ------------------------------------------------------------------------


def _reconcile_due(attempted_at: datetime | None) -> bool:
    if attempted_at is None:
        return True
    delay = timedelta(seconds=tensorpix_settings.RECONCILE_DELAY)
    return timezone.now() >= attempted_at + delay


@dataclass(frozen=True)
class _JobList:
    """One reading of an account's whole job list; ``jobs`` is ``None`` if it failed.

    ``read_at`` is when the reading began: it can settle a lost request only if that
    request had ended by then (:meth:`covers`).
    """

    read_at: datetime
    jobs: list[JobPayload] | None
    error: str = ""

    @classmethod
    def read(cls, client: TensorPixClient) -> _JobList:
        """Every page (their order is undocumented), bounded by ``RECONCILE_MAX_PAGES``."""
        read_at = timezone.now()
        max_pages = tensorpix_settings.RECONCILE_MAX_PAGES
        jobs: list[JobPayload] = []
        try:
            for number, page in enumerate(client.iter_job_pages()):
                if number >= max_pages:
                    message = f"The job list is longer than {max_pages} pages; still uncertain."
                    return cls(read_at, None, message)
                jobs += page
        except TensorPixError as error:
            return cls(read_at, None, f"Reconciling failed for now: {error}")
        return cls(read_at, jobs)

    def covers(self, job: Job) -> bool:
        """Whether the reading began ``RECONCILE_DELAY`` after the job's last attempt."""
        if job.submitted_at is None:
            return True
        delay = timedelta(seconds=tensorpix_settings.RECONCILE_DELAY)
        return self.read_at >= job.submitted_at + delay


class _JobLists:
    """A sweep's readings of the job list: one per account, made when first needed.

    A failed reading is kept too, so that one sweep asks a struggling TensorPix once per
    account, not once per uncertain job.
    """

    def __init__(self) -> None:
        self._lists: dict[str, _JobList] = {}

    def get(self, account: str, client: TensorPixClient) -> _JobList:
        if account not in self._lists:
            self._lists[account] = _JobList.read(client)
        return self._lists[account]


def _reconcile(job: Job, client: TensorPixClient, job_lists: _JobLists | None = None) -> bool:
    """Link the job a lost create request made; True when it is safe to send one now.

    Waits ``RECONCILE_DELAY`` after the attempt (the request must have ended), then
    searches the whole job list (:class:`_JobList`, the sweep's shared one if given).
    A match has the same source and ML models, was created since the attempt (less
    ``CLOCK_SKEW``), and no other local row holds it. Options are not compared: TensorPix
    may echo them normalised, and a false mismatch would send (and bill) the job twice.
    Any doubt (listing failed or too long) keeps the job uncertain: never resend blindly.
    """
    if not _reconcile_due(job.submitted_at):
        return False
    if job_lists is None:
        job_list = _JobList.read(client)
    else:
        job_list = job_lists.get(job.account, client)
        if not job_list.covers(job):
            # Read before this attempt had surely ended (it was retried meanwhile): the
            # reading cannot show what it made. The next sweep's will.
            return False
    if job_list.jobs is None:
        _note_error(job, job_list.error)
        return False
    since = (job.submitted_at or timezone.now()) - CLOCK_SKEW
    models = set(job.ml_models.values_list("tensorpix_id", flat=True))
    video_id = None
    if job.input_video_id is not None:
        video_id = _input_video_id(job)
    candidates = [
        item["id"] for item in job_list.jobs if _same_request(item, job, video_id, models, since)
    ]
    claimed = set(
        Job.objects.filter(account=job.account, tensorpix_id__in=candidates)
        .exclude(pk=job.pk)
        .filter(Q(submission_attempts__gt=0) | Q(local_created_at__lt=job.submitted_at))
        .values_list("tensorpix_id", flat=True)
    )
    free = sorted(set(candidates) - claimed)
    if free:
        if _link(job, free[0], f"Reconciled: the lost request had created job {free[0]}."):
            sync_linked_job(job, client)
        return False
    submission_event(
        job,
        job.submission_state,
        job.submission_state,
        "Reconciled: TensorPix has no job from the lost request; sending it again.",
    )
    return True


def _same_request(
    item: JobPayload | dict[str, Any],
    job: Job,
    video_id: int | None,
    models: set[int],
    since: datetime,
) -> bool:
    source = item.get("input_video") or {}
    if not isinstance(source, dict):
        return False
    if video_id is not None:
        if source.get("id") != video_id:
            return False
    elif source.get("external_url") != job.video_url:
        return False
    remote_models = {model.get("id") for model in item.get("ml_models") or []}
    if remote_models != models:
        return False
    return _created_since(item.get("started"), since)


def _created_since(value: Any, since: datetime) -> bool:
    """Unreadable or missing dates count as recent: a date must never hide a match."""
    parsed = parse_datetime(value) if isinstance(value, str) else None
    return parsed is None or parsed >= since
