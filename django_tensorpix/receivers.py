"""Signal receivers of django-tensorpix itself, connected in ``AppConfig.ready``."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from django_tensorpix import signals
from django_tensorpix.conf import tensorpix_settings


@receiver(signals.job_finished, dispatch_uid="django_tensorpix.archive_on_finish")
def archive_finished_output(sender: Any, job: Any, created: bool = False, **kwargs: Any) -> None:
    """With ``ARCHIVE_OUTPUTS``, archive each finished job's output in a Celery task.

    Jobs the sync meets for the first time already finished (``created``: history being
    imported) are left alone: copying a whole account's past outputs is a decision to
    take explicitly, with ``services.archive_output``.
    """
    if not tensorpix_settings.ARCHIVE_OUTPUTS or created:
        return
    from django_tensorpix import tasks

    tasks.enqueue(tasks.archive_job_output, job.pk, what=f"archiving {job}")
