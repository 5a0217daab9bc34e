"""Signals for what happens to a job, sent by the sync when it sees a status change.

They are sent from ``transaction.on_commit`` (robustly: a failing receiver is logged and
does not undo the sync), so a receiver sees committed rows and may start a Celery task
or send an e-mail without racing the commit. When nothing is committed (a rolled back
transaction, pytest-django's ``db`` fixture) they are never sent.

Every signal has ``sender=Job`` and the keyword arguments ``job`` (the instance) and
``created`` (True when the sync met the job for the first time, e.g. importing history:
a receiver that notifies users may want to skip those). ``job_status_changed`` also has
``old_status`` (``None`` before the first sync) and ``new_status``; either may be a value
TensorPix added after this version.
"""

from django.dispatch import Signal

job_status_changed = Signal()
job_finished = Signal()
job_failed = Signal()
job_canceled = Signal()

# Submission (django_tensorpix.services), sent on commit like the signals above.
# job_submit_failed: TensorPix refused the job (or the local Credits threshold did); it
# ends ``rejected`` and is never retried. Arguments: ``job``, ``message``.
job_submit_failed = Signal()
# credits_low: the balance read before a submission is below CREDITS_MIN_BALANCE.
# ``sender=Job``; arguments ``account`` (alias), ``balance`` and ``threshold`` (Decimals).
credits_low = Signal()
# job_archived: a finished job's output was copied to ARCHIVE_STORAGE. Argument ``job``.
job_archived = Signal()
