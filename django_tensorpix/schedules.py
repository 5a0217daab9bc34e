"""Ready-made Celery beat entries, importable from a settings module.

Settings load before Django's apps, so this module imports no models: use it as

.. code-block:: python

    from django_tensorpix.schedules import beat_schedule

    CELERY_BEAT_SCHEDULE = {**beat_schedule(), **your_own_entries}
"""

from __future__ import annotations

from typing import Any

# Seconds between two polling sweeps. A sweep with nothing due costs one indexed query,
# and the sweep interval adds up to its length to the lag between a job ending at
# TensorPix and ``job_finished``.
SWEEP_INTERVAL = 2.0
# The full sync (imports jobs made in TensorPix's web app, flags deleted objects).
FULL_SYNC_INTERVAL = 6 * 3600.0
# Seconds between two submission sweeps (submission.submit_pending_jobs): how soon a job
# whose Celery message was lost, whose worker died or whose answer was lost is driven again,
# and how often an upload's readiness is checked.
SUBMIT_SWEEP_INTERVAL = 30.0


def beat_schedule(
    *,
    sweep_interval: float = SWEEP_INTERVAL,
    queue: str | None = None,
    full_sync_interval: float | None = FULL_SYNC_INTERVAL,
    submit_interval: float | None = SUBMIT_SWEEP_INTERVAL,
) -> dict[str, dict[str, Any]]:
    """Beat entries: the polling sweep, the full sync, the submission and upload sweeps.

    ``full_sync_interval=None`` or ``submit_interval=None`` leaves that entry out.

    Each run expires after one interval, so a beat that was down does not replay a pile
    of sweeps, and a sweep stuck behind slow work is dropped rather than run late
    (duplicates are harmless anyway: a job is claimed by one sweep only). ``queue``
    routes both to a queue of their own, served by a worker that does nothing slow.
    """
    options: dict[str, Any] = {"queue": queue} if queue else {}
    schedule = {
        "tensorpix-poll-due-jobs": {
            "task": "django_tensorpix.poll_due_jobs",
            "schedule": sweep_interval,
            "options": {**options, "expires": sweep_interval},
        }
    }
    if full_sync_interval is not None:
        schedule["tensorpix-sync-all"] = {
            "task": "django_tensorpix.sync_all",
            "schedule": full_sync_interval,
            "options": {**options, "expires": full_sync_interval},
        }
    if submit_interval is not None:
        schedule["tensorpix-submit-pending-jobs"] = {
            "task": "django_tensorpix.submit_pending_jobs",
            "schedule": submit_interval,
            "options": {**options, "expires": submit_interval},
        }
        schedule["tensorpix-upload-pending-videos"] = {
            "task": "django_tensorpix.upload_pending_videos",
            "schedule": submit_interval,
            "options": {**options, "expires": submit_interval},
        }
    return schedule


BEAT_SCHEDULE = beat_schedule()
