"""Sending the signals of a job's events, at least once each.

A status (or stalled) event is written in the same transaction as the change it records,
with ``dispatched_at`` null and a short ``dispatch_lease_until`` held by the process that
wrote it. Once the transaction commits, that process sends the event's signals and sets
``dispatched_at``. If it dies in between, the lease runs out and
:func:`dispatch_pending` (run by every polling sweep) sends what was left: a receiver
may then, in that rare case, see an event twice, and tells by ``event.pk``.

Receivers are called robustly: one that raises is logged and does not stop the others,
nor is the event sent again for it (a broken receiver would otherwise be called forever).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

from django.db import router, transaction
from django.dispatch import Signal
from django.utils import timezone

from django_tensorpix import signals
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobEventKind, JobStatus
from django_tensorpix.models import SIGNALLED_EVENT_KINDS, Job, JobEvent

logger = logging.getLogger(__name__)

STATUS_SIGNALS: dict[int | None, Signal] = {
    JobStatus.FINISHED: signals.job_finished,
    JobStatus.FAILED: signals.job_failed,
    JobStatus.CANCELED: signals.job_canceled,
}


def dispatch_lease(now: datetime) -> datetime:
    """Until when the process that records an event owns sending its signals."""
    return now + timedelta(seconds=tensorpix_settings.POLL_LEASE)


def send_event_signals(event: JobEvent, job: Job, *, created: bool) -> None:
    """Send the signals one event stands for, each with ``event=``."""
    if event.kind == JobEventKind.STATUS:
        old_status, new_status = _status(event.old_value), _status(event.new_value)
        _send(
            signals.job_status_changed,
            job=job,
            created=created,
            old_status=old_status,
            new_status=new_status,
            event=event,
        )
        status_signal = STATUS_SIGNALS.get(new_status)
        if status_signal is not None:
            _send(status_signal, job=job, created=created, event=event)
    elif event.kind == JobEventKind.STALLED:
        _send(signals.job_stalled, job=job, event=event)


def dispatch_on_commit(items: Sequence[tuple[JobEvent, Job, bool]], *, using: str) -> None:
    """Once the current transaction commits, send each ``(event, job, created)``'s signals."""
    if items:
        transaction.on_commit(partial(_dispatch, list(items), using), using=using)


def dispatch_pending(*, now: datetime | None = None, limit: int = 100) -> int:
    """Send the signals of events whose dispatch was left undone; return how many.

    Each event is claimed by a conditional ``UPDATE`` of its lease first, so two sweeps
    never send the same leftover event. ``created`` is recovered from the event (a
    first sync has no old status).
    """
    now = now or timezone.now()
    using = router.db_for_write(JobEvent)
    events = JobEvent.objects.using(using)
    pending = list(
        events.filter(dispatched_at__isnull=True, kind__in=SIGNALLED_EVENT_KINDS)
        .filter(dispatch_lease_until__lt=now)
        .order_by("at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for pk in pending:
        claimed = events.filter(
            pk=pk, dispatched_at__isnull=True, dispatch_lease_until__lt=now
        ).update(dispatch_lease_until=dispatch_lease(now))
        if not claimed:
            continue
        event = events.select_related("job").get(pk=pk)
        logger.warning("Sending the signals of %s (job %s) left undone", event, event.job_id)
        _dispatch([(event, event.job, event.old_value == "")], using)
        sent += 1
    return sent


def _dispatch(items: list[tuple[JobEvent, Job, bool]], using: str) -> None:
    for event, job, created in items:
        send_event_signals(event, job, created=created)
    JobEvent.objects.using(using).filter(
        pk__in=[event.pk for event, _, _ in items], dispatched_at__isnull=True
    ).update(dispatched_at=timezone.now(), dispatch_lease_until=None)


def _send(signal: Signal, **arguments: object) -> None:
    for receiver, result in signal.send_robust(sender=Job, **arguments):
        if isinstance(result, Exception):
            logger.error(
                "A receiver of a django-tensorpix signal failed: %r", receiver, exc_info=result
            )


def _status(stored: str) -> int | None:
    return None if stored == "" else int(stored)
