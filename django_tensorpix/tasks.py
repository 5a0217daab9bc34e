"""Celery tasks: thin wrappers that load a row and call the module doing the work.

Tasks take primary keys, never instances, so a message stays valid and small. Every task
here is idempotent: a duplicated message, or a redelivery after a worker died
(``acks_late``), does no harm.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from django_tensorpix import services
from django_tensorpix.models import Job

# -- Submission -------------------------------------------------------------------------

# How often beat runs submit_pending_jobs, and how long a queued run stays valid: a late
# or replayed sweep is dropped rather than piling up behind a slow one.
SUBMIT_SWEEP_INTERVAL = 30.0


@shared_task(name="django_tensorpix.submit_job", ignore_result=True, acks_late=True)
def submit_job(job_pk: int) -> None:
    """Submit one job (``services.submit_job``); nothing happens if it is already on its way."""
    job = Job.objects.filter(pk=job_pk).first()
    if job is not None:
        services.submit_job(job)


@shared_task(name="django_tensorpix.submit_pending_jobs", ignore_result=True)
def submit_pending_jobs() -> int:
    """Re-drive stalled submissions (lost messages, killed workers, lost answers)."""
    return services.submit_pending_jobs()


@shared_task(name="django_tensorpix.archive_job_output", ignore_result=True, acks_late=True)
def archive_job_output(job_pk: int) -> None:
    """Archive a finished job's output (``services.archive_output``); a no-op once archived."""
    job = Job.objects.filter(pk=job_pk).first()
    if job is not None:
        services.archive_output(job)


# Beat entries for the submission sweep; merge into the host's ``beat_schedule``.
SUBMISSION_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "tensorpix-submit-pending-jobs": {
        "task": "django_tensorpix.submit_pending_jobs",
        "schedule": SUBMIT_SWEEP_INTERVAL,
        "options": {"expires": SUBMIT_SWEEP_INTERVAL},
    },
}
