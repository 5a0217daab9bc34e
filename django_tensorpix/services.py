"""Starting, stopping, archiving and cleaning up TensorPix jobs from Django.

The one module host code, the admin and the REST API call for operations with several
steps. Each step that reaches TensorPix goes through :mod:`django_tensorpix.client`, and
every payload it gets back goes through :mod:`django_tensorpix.sync` (where statuses are
decided); this module only orchestrates and keeps the local submission state.

Submission is durable and at most once:

* :func:`enhance_from_url` and :func:`enhance_file` validate locally, write the ``Job``
  row with every requested option, and enqueue the Celery task on commit. No request
  leaves before the row exists; a lost task message is re-driven by
  :func:`submit_pending_jobs` (the periodic task of the same name).
* :func:`submit_job` commits ``submitting`` before the create request leaves. A request
  whose outcome is unknown (:class:`~django_tensorpix.exceptions.OutcomeUnknown`) moves the
  job to ``uncertain``; it is reconciled (the whole job list searched for what it may have
  created) before anything is sent again, and resent only when nothing can match. A
  sweep reads each account's job list once for all the jobs it reconciles.
* Submissions of one source (a URL, an uploaded video) are serialised by a lease on a
  :class:`~django_tensorpix.models.SubmissionLock` row.
* TensorPix's refusals end in ``rejected``, with its message, an event and the
  ``job_submit_failed`` signal; they are never retried.

:func:`submit_job` must run outside a transaction (a Celery task, a management command):
its state changes have to be committed before each request leaves, so inside an
``atomic`` block (``ATOMIC_REQUESTS`` included) it raises ``RuntimeError``. Views enqueue
the task instead (:func:`enhance_from_url` does it for you).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django_tensorpix import signals
from django_tensorpix._http import describe_body
from django_tensorpix.client import JobPayload, TensorPixClient
from django_tensorpix.conf import DEFAULT_ACCOUNT, tensorpix_settings
from django_tensorpix.enums import (
    CancelOutcome,
    JobEventKind,
    JobStatus,
    SubmissionState,
    Task,
)
from django_tensorpix.exceptions import (
    APIError,
    ArchiveIncomplete,
    AuthenticationError,
    Conflict,
    CreditsTooLow,
    MalformedResponse,
    NoOutput,
    NotCancelable,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    TensorPixError,
    TransientError,
)
from django_tensorpix.models import (
    Job,
    JobEvent,
    MLModel,
    SubmissionLock,
    Video,
    archive_storage,
    archive_upload_to,
    upload_storage,
    upload_upload_to,
)
from django_tensorpix.options import VIDEO_URL_MAX_LENGTH, check_job_options
from django_tensorpix.sync import (
    sync_job,
    sync_ml_models,
    sync_restored_video,
    sync_video,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CancelResult",
    "archive_output",
    "cancel_job",
    "check_credits",
    "delete_remote_output",
    "delete_remote_video",
    "enhance_file",
    "enhance_from_url",
    "output_download_url",
    "resolve_ml_models",
    "retry_submission",
    "submit_job",
    "submit_pending_jobs",
    "upload_pending_video",
    "upload_pending_videos",
    "upload_video",
    "validate_job_options",
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
ModelRef = int | str | MLModel


# -- Validation -------------------------------------------------------------------------


def validate_job_options(options: dict[str, Any], *, from_url: bool) -> dict[str, Any]:
    """The options cleaned, or a ``ValidationError`` with one message list per bad field.

    Bounds and enums are TensorPix's (:mod:`django_tensorpix.options`); ``qscale`` and
    ``prores_profile`` are refused for URL jobs, which TensorPix would silently ignore.
    """
    cleaned, errors = check_job_options(options, from_url=from_url)
    if errors:
        raise ValidationError(errors)
    return cleaned


def validate_video_url(video_url: Any) -> str:
    """A direct http(s) URL of at most 2048 characters, as ``EnhanceVideo.video_url``."""
    if not isinstance(video_url, str) or not video_url.strip():
        raise ValidationError("Enter the URL of a video.")
    url = video_url.strip()
    if len(url) > VIDEO_URL_MAX_LENGTH:
        raise ValidationError(f"The URL is longer than {VIDEO_URL_MAX_LENGTH} characters.")
    URLValidator(schemes=["http", "https"])(url)
    return url


def resolve_ml_models(
    refs: Iterable[ModelRef],
    *,
    account: str = DEFAULT_ACCOUNT,
    input_resolution: int | tuple[int, int] | None = None,
) -> list[MLModel]:
    """The AI filters named by TensorPix id, exact name or task name ("Super Resolution").

    Resolved through the synced catalogue, which is synced once on demand when it is empty
    or lacks a name asked for. Raises ``ValidationError`` when a reference is unknown or
    ambiguous (a task with several filters), when two filters share a task (TensorPix takes
    one per task), or when a filter's ``max_resolution`` (pixels) is below
    ``input_resolution`` (pixels, or ``(width, height)``).
    """
    # A lone id or name (a string is iterable too) is refused rather than read char by char.
    if isinstance(refs, str | bytes | int | MLModel) or not isinstance(refs, Iterable):
        raise ValidationError("Give a list of AI filter ids or names.")
    refs = list(refs)
    if not refs:
        raise ValidationError("Choose at least one AI filter.")
    catalogue = list(MLModel.objects.filter(account=account))
    if not catalogue or _unresolved(refs, catalogue):
        _sync_catalogue(account)
        catalogue = list(MLModel.objects.filter(account=account))
    errors: list[str] = []
    chosen: list[MLModel] = []
    for ref in refs:
        matches, message = _match_model(ref, catalogue)
        if message:
            errors.append(message)
        elif matches[0] not in chosen:
            chosen.append(matches[0])
    tasks: dict[int, MLModel] = {}
    for model in chosen:
        other = tasks.setdefault(model.task, model)
        if other is not model:
            errors.append(
                f"{other.name} and {model.name} are both {_task_label(model.task)} filters; "
                "TensorPix takes one filter per task."
            )
    pixels = _pixels(input_resolution)
    if pixels is not None:
        errors += [
            f"{model.name} accepts inputs up to {model.max_resolution} pixels; "
            f"this video has {pixels}."
            for model in chosen
            if model.max_resolution < pixels
        ]
    if errors:
        raise ValidationError(errors)
    return chosen


def _unresolved(refs: Sequence[ModelRef], catalogue: list[MLModel]) -> bool:
    return any(not _match_model(ref, catalogue)[0] for ref in refs)


def _match_model(ref: ModelRef, catalogue: list[MLModel]) -> tuple[list[MLModel], str]:
    """The filters ``ref`` names, and a message when it names none or several."""
    if isinstance(ref, MLModel):
        ref = ref.tensorpix_id
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        return [], f"{repr(ref)[:80]} is not an AI filter id or name."
    if isinstance(ref, int):
        found = [model for model in catalogue if model.tensorpix_id == ref]
        return found, "" if found else f"No AI filter has the id {ref}."
    wanted = ref.strip().casefold()
    by_name = [model for model in catalogue if model.name.casefold() == wanted]
    if by_name:
        return by_name, ""
    by_task = [model for model in catalogue if _task_label(model.task).casefold() == wanted]
    if len(by_task) > 1:
        names = ", ".join(f"{model.name} ({model.tensorpix_id})" for model in by_task)
        return by_task, f"{ref!r} matches several AI filters: {names}; name one."
    if by_task:
        return by_task, ""
    return [], f"No AI filter or task is called {ref[:80]!r}."


def _task_label(task: int) -> str:
    try:
        return str(Task(task).label)
    except ValueError:
        return str(task)


def _pixels(resolution: int | tuple[int, int] | None) -> int | None:
    if resolution is None:
        return None
    if isinstance(resolution, tuple):
        width, height = resolution
        return int(width) * int(height)
    return int(resolution)


def _sync_catalogue(account: str) -> None:
    with TensorPixClient.for_account(account) as client:
        for page in client.iter_ml_model_pages():
            sync_ml_models(page, account=account)


# -- Creating jobs ------------------------------------------------------------------------


def enhance_from_url(
    video_url: str,
    ml_models: Iterable[ModelRef],
    *,
    user: Any = None,
    account: str = DEFAULT_ACCOUNT,
    input_resolution: int | tuple[int, int] | None = None,
    **options: Any,
) -> Job:
    """Create a job enhancing the video at ``video_url``; submitted by a Celery task.

    Validates everything first (``ValidationError`` with a message list per field:
    ``video_url``, ``ml_models``, each option), then writes the row and enqueues
    the submission when the transaction commits.
    """
    tensorpix_settings.get_account(account)
    errors: dict[str, list[str]] = {}
    url = ""
    try:
        url = validate_video_url(video_url)
    except ValidationError as error:
        errors["video_url"] = list(error.messages)
    cleaned, option_errors = check_job_options(options, from_url=True)
    errors.update(option_errors)
    models = _resolve_or_collect(ml_models, account, input_resolution, errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        job = Job.objects.create(account=account, user=user, video_url=url, **cleaned)
        _created(job, models)
    return job


def enhance_file(
    source: str | os.PathLike[str] | File[Any],
    ml_models: Iterable[ModelRef],
    *,
    name: str | None = None,
    user: Any = None,
    account: str = DEFAULT_ACCOUNT,
    input_resolution: int | tuple[int, int] | None = None,
    **options: Any,
) -> Job:
    """Create a job enhancing a local file: a path, a Django ``File``, or a storage name.

    A path or ``File`` is copied (streamed) into ``UPLOAD_STORAGE`` first, so the Celery
    worker that uploads it can read it after this request ends; a string that is no
    existing path is taken as a name already in ``UPLOAD_STORAGE``. Validation as in
    :func:`enhance_from_url`; ``qscale`` and ``prores_profile`` are accepted here.
    """
    tensorpix_settings.get_account(account)
    errors: dict[str, list[str]] = {}
    cleaned, option_errors = check_job_options(options, from_url=False)
    errors.update(option_errors)
    models = _resolve_or_collect(ml_models, account, input_resolution, errors)
    video = Video(account=account, user=user)
    with _kept_local_copy(video, source, name, errors), transaction.atomic():
        video.save()
        job = Job.objects.create(account=account, user=user, input_video=video, **cleaned)
        _created(job, models)
    return job


def upload_video(
    source: str | os.PathLike[str] | File[Any],
    *,
    name: str | None = None,
    user: Any = None,
    account: str = DEFAULT_ACCOUNT,
) -> Video:
    """Upload a file to TensorPix without enhancing it; the upload runs in a Celery task.

    The file is kept in ``UPLOAD_STORAGE`` as by :func:`enhance_file` (``ValidationError``
    for a missing or empty file or no name), the ``Video`` row is written, and
    :func:`upload_pending_video` runs on commit. Uploading costs storage quota, not
    Credits, so no balance is read. A lost task message is re-driven by
    :func:`upload_pending_videos`.
    """
    tensorpix_settings.get_account(account)
    video = Video(account=account, user=user)
    with _kept_local_copy(video, source, name, {}), transaction.atomic():
        video.save()
        transaction.on_commit(partial(enqueue_upload, video.pk))
    return video


@contextmanager
def _kept_local_copy(
    video: Video,
    source: str | os.PathLike[str] | File[Any],
    name: str | None,
    errors: dict[str, list[str]],
) -> Iterator[str]:
    """Put ``source`` in ``UPLOAD_STORAGE`` as ``video.local_file``; yields its name.

    Raises ``ValidationError`` with ``errors`` plus the source's own; a copy made here is
    deleted again when the block fails (a name already in the storage is left alone).
    """
    # The storage is looked up now, not the field's (fixed when models were imported).
    storage = upload_storage()
    with ExitStack() as stack:
        opened: File[Any] | None = None
        if isinstance(source, File):
            opened = source
        elif not isinstance(source, str | os.PathLike) or isinstance(os.fspath(source), bytes):
            errors["source"] = ["Give a path, a Django File or a name in the upload storage."]
        elif os.path.isfile(source):
            opened = File(stack.enter_context(Path(source).open("rb")), name=os.fspath(source))
        elif isinstance(source, str) and _stored(storage, source):
            video.local_file.name = source
        else:
            shown = os.fspath(source)[:200]
            errors["source"] = [f"No file at {shown!r}, nor in the upload storage."]
        given = name or (opened.name if opened is not None else video.local_file.name)
        video.name = os.path.basename(given or "")
        if not video.name and "source" not in errors:
            errors.setdefault("name", []).append("Give the file a name (with its extension).")
        if opened is not None and "source" not in errors and not opened.size:
            errors["source"] = ["The file is empty."]
        if errors:
            raise ValidationError(errors)
        if opened is not None:
            opened.seek(0)
            target = storage.generate_filename(upload_upload_to(video, video.name))
            video.local_file.name = storage.save(target, opened)
    stored: str = video.local_file.name or ""
    video.size = storage.size(stored)
    try:
        yield stored
    except BaseException:
        if stored != source:
            storage.delete(stored)
        raise


def _stored(storage: Any, name: str) -> bool:
    """Whether ``name`` is in ``storage``; a name escaping its root (``../``) is not."""
    try:
        return bool(storage.exists(name))
    except (SuspiciousFileOperation, ValueError):
        return False


def _resolve_or_collect(
    refs: Iterable[ModelRef],
    account: str,
    input_resolution: int | tuple[int, int] | None,
    errors: dict[str, list[str]],
) -> list[MLModel]:
    try:
        return resolve_ml_models(refs, account=account, input_resolution=input_resolution)
    except ValidationError as error:
        errors["ml_models"] = list(error.messages)
        return []


def _created(job: Job, models: list[MLModel]) -> None:
    job.ml_models.set(models)
    _event(job, "", SubmissionState.PENDING, "Created locally; waiting to be submitted.")
    transaction.on_commit(partial(enqueue_submission, job.pk))


def enqueue_submission(job_pk: int) -> None:
    """Send the submission task; if the broker is down, the periodic sweep re-drives it."""
    from django_tensorpix import tasks

    try:
        tasks.submit_job.delay(job_pk)
    except Exception as error:
        logger.warning(
            "Could not enqueue the submission of job %s (%s); submit_pending_jobs will.",
            job_pk,
            type(error).__name__,
        )


def retry_submission(job: Job) -> Job:
    """Send a rejected or withdrawn job again, as a new submission (e.g. after a top-up).

    A refused job is never retried automatically; this is the explicit way to do it.
    """
    moved = Job.objects.filter(
        pk=job.pk,
        tensorpix_id__isnull=True,
        submission_state__in=[SubmissionState.REJECTED, SubmissionState.WITHDRAWN],
    ).update(submission_state=SubmissionState.PENDING, last_submission_error="")
    if moved:
        _event(job, job.submission_state, SubmissionState.PENDING, "Submission retried.")
        transaction.on_commit(partial(enqueue_submission, job.pk))
    job.refresh_from_db()
    return job


# -- Submitting -------------------------------------------------------------------------


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
                _sync_linked(job, client)
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
        _event(job, old, state, message)
    return bool(moved)


def _event(job: Job, old: str, new: str, message: str) -> None:
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


# Uploads


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
        raise _UploadFailed(_refusal_message(error), final=True) from None
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
        _event(job, job.submission_state, job.submission_state, message)
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


# Uploads without a job


def enqueue_upload(video_pk: int) -> None:
    """Send the upload task; if the broker is down, the periodic sweep re-drives it."""
    from django_tensorpix import tasks

    try:
        tasks.upload_video.delay(video_pk)
    except Exception as error:
        logger.warning(
            "Could not enqueue the upload of video %s (%s); upload_pending_videos will.",
            video_pk,
            type(error).__name__,
        )


def _pending_uploads() -> Q:
    """Videos made by :func:`upload_video` that TensorPix does not have yet.

    A job's input is uploaded by its submission (Credits checked first), not here.
    """
    return Q(
        tensorpix_id__isnull=True,
        jobs__isnull=True,
        upload_error="",
        remote_deleted_at__isnull=True,
    ) & ~Q(local_file="")


def upload_pending_video(video: Video) -> Video:
    """Upload one video made by :func:`upload_video` now, at most once; returns it refreshed.

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


# Create requests


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
        _reject(job, _refusal_message(error))
        return
    remote_id = created.get("id")
    if isinstance(remote_id, bool) or not isinstance(remote_id, int):
        message = "TensorPix's answer had no job id; the job list is searched instead."
        _set_state(job, SubmissionState.UNCERTAIN, message, last_submission_error=message)
        return
    _link(job, remote_id, f"Created at TensorPix as job {remote_id}.")
    _sync_linked(job, client)


def _refusal_message(error: APIError) -> str:
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
            _event(job, job.submission_state, SubmissionState.SUBMITTED, message)
    job.refresh_from_db()
    return bool(linked)


def _sync_linked(job: Job, client: TensorPixClient) -> None:
    """Read the linked job once and sync it; polling (or the sweep) retries on failure."""
    assert job.tensorpix_id is not None
    try:
        payload = client.get_job(job.tensorpix_id)
        sync_job(payload, account=job.account)
    except TensorPixError as error:
        logger.warning("Job %s: could not read it after linking: %s", job.pk, error)


# Reconciliation


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
            _sync_linked(job, client)
        return False
    _event(
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


# -- Cancelling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelResult:
    """What :func:`cancel_job` achieved, and TensorPix's words when it said no."""

    outcome: CancelOutcome
    message: str = ""

    @property
    def done(self) -> bool:
        """Whether the job is (or already was) stopped."""
        return self.outcome in (
            CancelOutcome.CANCELED,
            CancelOutcome.ALREADY_CANCELED,
            CancelOutcome.WITHDRAWN,
        )

    def __str__(self) -> str:
        return str(self.outcome.label) + (f": {self.message}" if self.message else "")


def cancel_job(job: Job) -> CancelResult:
    """Stop ``job`` (TensorPix's ``DELETE /api/jobs/{id}/``), then sync what it became.

    204 canceled; 409 already canceled; a 404 or 409 answering a DELETE the client retried
    after a lost answer also means done. 500 is TensorPix's "still running, cannot be
    stopped now": reported as ``NOT_STOPPED``, and polling goes on. A job not sent yet is
    withdrawn locally; one whose create request may be in flight raises
    :class:`~django_tensorpix.exceptions.NotCancelable`.
    """
    job.refresh_from_db()
    if job.tensorpix_id is None:
        withdrawn = Job.objects.filter(
            pk=job.pk,
            tensorpix_id__isnull=True,
            submission_state__in=[SubmissionState.PENDING, SubmissionState.UPLOADING],
        ).update(submission_state=SubmissionState.WITHDRAWN)
        if withdrawn:
            _event(job, job.submission_state, SubmissionState.WITHDRAWN, "Canceled locally.")
            job.refresh_from_db()
            return CancelResult(CancelOutcome.WITHDRAWN)
        raise NotCancelable(
            f"Job {job.pk} is {job.get_submission_state_display().lower()}: its create "
            "request may have reached TensorPix. Cancel it once it is submitted."
        )
    with TensorPixClient.for_account(job.account) as client:
        try:
            client.cancel_job(job.tensorpix_id)
            result = CancelResult(CancelOutcome.CANCELED)
        except (Conflict, NotFound) as error:
            result = CancelResult(CancelOutcome.ALREADY_CANCELED, _refusal_message(error))
        except APIError as error:
            if error.status == 500:
                result = CancelResult(CancelOutcome.NOT_STOPPED, _refusal_message(error))
            elif error.status == 400:
                result = CancelResult(CancelOutcome.ALREADY_ENDED, _refusal_message(error))
            else:
                raise
        JobEvent.objects.create(
            job=job, kind=JobEventKind.CANCEL, new_value=result.outcome, message=result.message
        )
        if result.outcome != CancelOutcome.NOT_STOPPED:
            _sync_linked(job, client)
    job.refresh_from_db()
    return result


# -- Outputs --------------------------------------------------------------------------------


def output_download_url(job: Job) -> str:
    """A fresh presigned URL of the finished job's output (stored ones expire).

    Falls back to the archived copy's URL when TensorPix no longer has the output.
    """
    job.refresh_from_db()
    if job.output_video_id is None or job.output_video is None:
        if job.archived_file:
            return archive_storage().url(job.archived_file.name)
        raise NoOutput(f"{job} has no output video (status: {job.get_status_display()}).")
    with TensorPixClient.for_account(job.account) as client:
        try:
            payload = client.get_restored_video(job.output_video.tensorpix_id)
        except NotFound:
            if job.archived_file:
                return archive_storage().url(job.archived_file.name)
            raise NoOutput(f"{job}'s output is gone from TensorPix and was not archived.") from None
    sync_restored_video(payload, account=job.account)
    url = payload.get("file")
    if not url:
        raise NoOutput(f"TensorPix gave no download URL for {job}'s output.")
    return str(url)


def archive_output(job: Job, *, delete_remote: bool | None = None) -> Job:
    """Copy the finished output into ``ARCHIVE_STORAGE`` (``Job.archived_file``). Idempotent.

    Streamed to a temporary file, its size checked against TensorPix's ``size``, then
    saved to the storage; only then is the row marked archived, so an interrupted archive
    never claims a half file. Then deletes the remote output when ``delete_remote`` (default
    ``DELETE_REMOTE_AFTER_ARCHIVE``) is true, to free TensorPix storage quota.
    """
    if delete_remote is None:
        delete_remote = bool(tensorpix_settings.DELETE_REMOTE_AFTER_ARCHIVE)
    job.refresh_from_db()
    if not job.archived_file:
        _archive(job)
        job.refresh_from_db()
    if delete_remote and job.archived_file:
        delete_remote_output(job)
        job.refresh_from_db()
    return job


def _archive(job: Job) -> None:
    if job.status != JobStatus.FINISHED or job.output_video is None:
        raise NoOutput(f"{job} is not finished with an output; nothing to archive.")
    with TensorPixClient.for_account(job.account) as client:
        payload = client.get_restored_video(job.output_video.tensorpix_id)
        sync_restored_video(payload, account=job.account)
        url, expected = payload.get("file"), payload.get("size")
        if not url:
            raise NoOutput(f"TensorPix gave no download URL for {job}'s output.")
        with tempfile.TemporaryFile() as spool:
            limit = expected if isinstance(expected, int) and expected >= 0 else None
            written = client.download(url, spool, max_bytes=limit)
            if expected is not None and written != expected:
                raise ArchiveIncomplete(
                    f"Downloaded {written} bytes of {job}'s output; TensorPix said {expected}."
                )
            spool.seek(0)
            filename = os.path.basename(payload.get("name") or "") or f"job-{job.tensorpix_id}.mp4"
            storage = archive_storage()
            target = storage.generate_filename(archive_upload_to(job, filename))
            name = storage.save(target, File(spool))
    claimed = Job.objects.filter(pk=job.pk, archived_file="").update(
        archived_file=name, archived_at=timezone.now()
    )
    if not claimed:
        # Another run archived it meanwhile: keep theirs, drop this copy.
        storage.delete(name)
        return
    job.refresh_from_db()
    JobEvent.objects.create(job=job, kind=JobEventKind.ARCHIVE, new_value=name)
    signals.job_archived.send_robust(sender=Job, job=job)


def delete_remote_output(job: Job) -> None:
    """Delete the job's output at TensorPix (freeing quota); the local rows are kept.

    Already gone (404) counts as done. The ``RestoredVideo`` row gets ``deleted`` set.
    """
    job.refresh_from_db()
    if job.output_video is None:
        raise NoOutput(f"{job} has no output video to delete.")
    output = job.output_video
    with TensorPixClient.for_account(job.account) as client:
        try:
            client.delete_restored_video(output.tensorpix_id)
        except NotFound:
            logger.info("The output of %s was already deleted at TensorPix.", job)
    type(output).objects.filter(pk=output.pk, deleted__isnull=True).update(deleted=timezone.now())


def delete_remote_video(video: Video) -> None:
    """Delete an uploaded input at TensorPix; the row is kept, with ``remote_deleted_at``.

    Already gone (404) counts as done; :class:`~django_tensorpix.exceptions.Conflict`
    while an active job still uses it.
    """
    if video.tensorpix_id is None:
        raise NoOutput(f"{video} was never uploaded to TensorPix.")
    with TensorPixClient.for_account(video.account) as client:
        try:
            client.delete_video(video.tensorpix_id)
        except NotFound:
            logger.info("%s was already deleted at TensorPix.", video)
    now = timezone.now()
    Video.objects.filter(pk=video.pk, remote_deleted_at__isnull=True).update(remote_deleted_at=now)
    video.refresh_from_db()
