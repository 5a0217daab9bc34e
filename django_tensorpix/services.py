"""Starting, stopping, archiving and cleaning up TensorPix jobs from Django.

The one module host code, the admin and the REST API call for operations with several
steps. Each step that reaches TensorPix goes through :mod:`django_tensorpix.client`, and
every payload it gets back goes through :mod:`django_tensorpix.sync` (where statuses are
decided); this module only orchestrates and keeps the local submission state.

* :func:`enhance_from_url`, :func:`enhance_file` and :func:`upload_video` validate locally,
  write the row with every requested option, and enqueue the Celery task on commit. No
  request leaves before the row exists; a lost task message is re-driven by the periodic
  sweeps.
* Sending is :mod:`django_tensorpix.submission`'s work (at most once, reconciled after a
  lost answer); its public functions (:func:`submit_job`, :func:`submit_pending_jobs`,
  :func:`upload_pending_video`, :func:`upload_pending_videos`, :func:`check_credits`) are
  importable from here too.
* :func:`cancel_job`, :func:`output_download_url`, :func:`archive_output`,
  :func:`delete_remote_output` and :func:`delete_remote_video` act on what TensorPix holds.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from django_tensorpix import signals
from django_tensorpix.client import TensorPixClient
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
    Conflict,
    NoOutput,
    NotCancelable,
    NotFound,
)
from django_tensorpix.models import (
    Job,
    JobEvent,
    MLModel,
    Video,
    archive_storage,
    archive_upload_to,
    upload_storage,
    upload_upload_to,
)
from django_tensorpix.options import VIDEO_URL_MAX_LENGTH, check_job_options
from django_tensorpix.submission import (
    check_credits,
    refusal_message,
    submission_event,
    submit_job,
    submit_pending_jobs,
    sync_linked_job,
    upload_pending_video,
    upload_pending_videos,
)
from django_tensorpix.sync import sync_ml_models, sync_restored_video

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
    submission_event(job, "", SubmissionState.PENDING, "Created locally; waiting to be submitted.")
    transaction.on_commit(partial(enqueue_submission, job.pk))


def enqueue_submission(job_pk: int) -> None:
    """Send the submission task; if the broker is down, the periodic sweep re-drives it."""
    from django_tensorpix import tasks

    tasks.enqueue(
        tasks.submit_job,
        job_pk,
        what=f"the submission of job {job_pk}",
        fallback="submit_pending_jobs",
    )


def enqueue_upload(video_pk: int) -> None:
    """Send the upload task; if the broker is down, the periodic sweep re-drives it."""
    from django_tensorpix import tasks

    tasks.enqueue(
        tasks.upload_video,
        video_pk,
        what=f"the upload of video {video_pk}",
        fallback="upload_pending_videos",
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
        submission_event(job, job.submission_state, SubmissionState.PENDING, "Submission retried.")
        transaction.on_commit(partial(enqueue_submission, job.pk))
    job.refresh_from_db()
    return job


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
            submission_event(
                job, job.submission_state, SubmissionState.WITHDRAWN, "Canceled locally."
            )
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
            result = CancelResult(CancelOutcome.ALREADY_CANCELED, refusal_message(error))
        except APIError as error:
            if error.status == 500:
                result = CancelResult(CancelOutcome.NOT_STOPPED, refusal_message(error))
            elif error.status == 400:
                result = CancelResult(CancelOutcome.ALREADY_ENDED, refusal_message(error))
            else:
                raise
        JobEvent.objects.create(
            job=job, kind=JobEventKind.CANCEL, new_value=result.outcome, message=result.message
        )
        if result.outcome != CancelOutcome.NOT_STOPPED:
            sync_linked_job(job, client)
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
