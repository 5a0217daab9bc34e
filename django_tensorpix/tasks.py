"""Celery tasks: thin wrappers that load a row and call the module doing the work.

Tasks take primary keys, never instances, so a message stays valid and small. Every task
here is idempotent: a duplicated message, or a redelivery after a worker died
(``acks_late``), does no harm. Each is a ``shared_task`` named ``django_tensorpix.<name>``
(route them by that name). Beat entries for the polling sweep and the full sync are in
:mod:`django_tensorpix.schedules` (importable from a settings module).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from django_tensorpix import polling, services, submission
from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job, Video
from django_tensorpix.schedules import BEAT_SCHEDULE, SUBMIT_SWEEP_INTERVAL, SWEEP_INTERVAL
from django_tensorpix.sync import sync_full_listing

__all__ = [
    "BEAT_SCHEDULE",
    "archive_job_output",
    "poll_due_jobs",
    "refresh_job",
    "submit_job",
    "submit_pending_jobs",
    "sync_all",
    "sync_ml_models",
]

logger = logging.getLogger(__name__)

# Catalogue and inputs first, jobs last: a job's nested copies then refresh the others.
SYNC_ORDER = ("ml-models", "videos", "restored-videos", "jobs")


def enqueue(task: Any, *args: Any, what: str, fallback: str = "") -> None:
    """``task.delay(*args)``, or a warning when the broker cannot take the message.

    Callers queue work that is already committed (on commit, or from a signal): a broker
    that is down must not undo or break it. ``fallback`` names the periodic sweep that
    re-drives the work, for the warning.
    """
    try:
        task.delay(*args)
    except Exception as error:
        then = f"; {fallback} will" if fallback else ""
        logger.warning("Could not enqueue %s (%s)%s.", what, type(error).__name__, then)


# -- Polling ---------------------------------------------------------------------------


@shared_task(name="django_tensorpix.poll_due_jobs", expires=SWEEP_INTERVAL, ignore_result=True)
def poll_due_jobs() -> dict[str, int]:
    """One polling sweep (see :func:`django_tensorpix.polling.poll_due_jobs`).

    Short and idempotent: meant for beat every few seconds. ``expires`` drops a sweep
    that waited in the queue longer than one interval; another one is on its way.
    """
    result = polling.poll_due_jobs()
    return {
        "claimed": result.claimed,
        "refreshed": len(result.refreshed),
        "failed": result.failed,
        "requests": result.requests,
        "dispatched": result.dispatched,
    }


@shared_task(name="django_tensorpix.refresh_job", ignore_result=True)
def refresh_job(job_pk: int) -> None:
    """Poll one job now (by local primary key). Errors are recorded on the job, not raised."""
    job = Job.objects.filter(pk=job_pk).first()
    if job is None or job.tensorpix_id is None:
        return
    try:
        polling.refresh_job(job)
    except TensorPixError as error:
        logger.warning("Refreshing %s failed: %s", job, error)


# -- Full sync -------------------------------------------------------------------------


def _sync_kinds(kinds: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """List every configured account's objects of ``kinds``; rows no longer listed get flagged.

    An account that fails is logged and skipped; the others are still synced.
    """
    report: dict[str, dict[str, int]] = {}
    for alias in tensorpix_settings.accounts:
        counts = report.setdefault(alias, {})
        try:
            with TensorPixClient.for_account(alias) as client:
                for kind in kinds:
                    result = sync_full_listing(kind, client)
                    counts[kind] = result.seen
        except TensorPixError as error:
            logger.error("Syncing account %r failed: %s", alias, error)
    return report


@shared_task(name="django_tensorpix.sync_ml_models", ignore_result=True)
def sync_ml_models() -> dict[str, Any]:
    """Copy the AI filter catalogue of every account."""
    return _sync_kinds(("ml-models",))


@shared_task(name="django_tensorpix.sync_all", ignore_result=True)
def sync_all() -> dict[str, Any]:
    """The full sync of every account: what ``manage.py tensorpix_sync`` does."""
    return _sync_kinds(SYNC_ORDER)


# -- Submission -------------------------------------------------------------------------


@shared_task(name="django_tensorpix.submit_job", ignore_result=True, acks_late=True)
def submit_job(job_pk: int) -> None:
    """Submit one job (``submission.submit_job``); nothing happens if it is already on its way."""
    job = Job.objects.filter(pk=job_pk).first()
    if job is not None:
        submission.submit_job(job)


@shared_task(
    name="django_tensorpix.submit_pending_jobs", expires=SUBMIT_SWEEP_INTERVAL, ignore_result=True
)
def submit_pending_jobs() -> int:
    """Re-drive stalled submissions (lost messages, killed workers, lost answers)."""
    return submission.submit_pending_jobs()


@shared_task(name="django_tensorpix.upload_video", ignore_result=True, acks_late=True)
def upload_video(video_pk: int) -> None:
    """Upload one video (``submission.upload_pending_video``); a no-op once uploaded."""
    video = Video.objects.filter(pk=video_pk).first()
    if video is not None:
        submission.upload_pending_video(video)


@shared_task(
    name="django_tensorpix.upload_pending_videos", expires=SUBMIT_SWEEP_INTERVAL, ignore_result=True
)
def upload_pending_videos() -> int:
    """Re-drive uploads made without a job whose task message or answer was lost."""
    return submission.upload_pending_videos()


@shared_task(name="django_tensorpix.archive_job_output", ignore_result=True, acks_late=True)
def archive_job_output(job_pk: int) -> None:
    """Archive a finished job's output (``services.archive_output``); a no-op once archived."""
    job = Job.objects.filter(pk=job_pk).first()
    if job is not None:
        services.archive_output(job)
