"""How a host project reacts to django-tensorpix: two receivers, connected in apps.py.

``job_finished`` is sent once per job, after the commit that recorded the change, by
whichever process ran the sync (a Celery worker, usually): sending an e-mail there never
races the transaction. ``post_save`` comes from the sync too, for every row it creates
or changes, with ``update_fields`` naming what changed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import send_mail
from django.db.models.signals import post_save
from django.dispatch import receiver

from django_tensorpix.models import Job
from django_tensorpix.signals import job_finished

logger = logging.getLogger("example")


@receiver(job_finished, dispatch_uid="example.email_owner_on_finish")
def email_owner_on_finish(sender: type[Job], job: Job, created: bool, **kwargs: Any) -> None:
    """Tell the job's owner their video is ready (the console backend prints the mail)."""
    if created or job.user is None or not job.user.email:
        return  # `created`: a job met for the first time, e.g. importing history
    send_mail(
        subject=f"Your enhanced video is ready (job {job.tensorpix_id})",
        message=f"Job {job.tensorpix_id} finished; it cost {job.cost_usd} Credits.",
        from_email=None,
        recipient_list=[job.user.email],
    )


@receiver(post_save, sender=Job, dispatch_uid="example.log_status_changes")
def log_status_changes(
    sender: type[Job], instance: Job, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    """Log a job's status whenever a save changed it (like any Django post_save receiver)."""
    if instance.status is None or (update_fields is not None and "status" not in update_fields):
        return  # not at TensorPix yet, or a save that left the status alone
    logger.info("%s: %s", instance, instance.get_status_display())
