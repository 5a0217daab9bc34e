"""Signals for what happens to a job, sent by the sync when it sees a status change.

They are sent after the transaction that recorded the change commits (robustly: a failing
receiver is logged and neither undoes the sync nor stops the other receivers), so a
receiver sees committed rows and may start a Celery task or send an e-mail without
racing the commit. When nothing is committed (a rolled back transaction, pytest-django's
``db`` fixture) they are never sent.

Every signal has ``sender=Job`` and the keyword argument ``job`` (the instance).

``job_status_changed``, ``job_finished``, ``job_failed`` and ``job_canceled`` also have
``created`` (True when the sync met the job for the first time, e.g. importing history:
a receiver that notifies users may want to skip those) and ``event``, the
:class:`~django_tensorpix.models.JobEvent` recording the transition.
``job_status_changed`` also has ``old_status`` (``None`` before the first sync) and
``new_status``; either may be a value TensorPix added after this version. TensorPix
gives no reason for a failure, and neither does ``job_failed``.

``job_stalled`` (``job``, ``event``) is sent once when a job is still active
``TENSORPIX["POLL_STALL_AFTER"]`` seconds after TensorPix started it; it is then polled
only every ``POLL_STALLED_INTERVAL`` seconds.

Delivery promise of the transition signals and ``job_stalled``: **at least once per
event**. Each event row is written in the transaction that records the change, and
marked (``dispatched_at``) once its signals were sent. If the process dies between the
commit and that mark, a later polling sweep sends what was left, once the lease of the
process that recorded it (``TENSORPIX["POLL_LEASE"]`` seconds) has run out. So in that
rare case a receiver may see the same transition twice: compare ``event.pk`` to tell.
A recovered ``created`` is True exactly when the event has no old status.

``job_progress`` (``job``, ``old_progress``, ``new_progress``: ratios 0 to 1, the old one
``None`` for a job seen for the first time) is best effort: sent on commit when the sync
stored a new ``processing_progress``, never re-sent, and lost if the process dies.

Django's model signals sent by the sync (it writes in bulk, so it sends them itself),
inside the sync's transaction, for the objects of the page and their nested objects:

* ``post_save`` for each row created or changed (none for a row re-read unchanged, even
  though its ``synced_at`` and presigned URLs move): ``sender`` the model, ``instance``,
  ``created``, ``raw=False``, ``using``, and ``update_fields`` = ``None`` for a created row,
  else a frozenset of the concrete fields that changed (TensorPix's columns,
  ``input_video``, ``output_video``, ``remote_data`` when only fields TensorPix added later
  changed). Always valid for ``instance.save(update_fields=update_fields)``.
* ``m2m_changed`` for a job's ML model links, after its ``post_save``: ``sender`` =
  ``Job.ml_models.through``, ``action`` ``"post_remove"`` then ``"post_add"`` (no ``pre_``
  actions: the links are already written), ``reverse=False``, ``model=MLModel``,
  ``pk_set``, ``using``. A job created with links gets ``post_add`` too.
* No ``pre_save``, and nothing when a row is flagged ``missing_remote`` or when a job loses
  its output video to a job that claims it later (bulk updates).
"""

from django.dispatch import Signal

job_status_changed = Signal()
job_finished = Signal()
job_failed = Signal()
job_canceled = Signal()
job_stalled = Signal()
job_progress = Signal()

# Submission (django_tensorpix.services), sent on commit like the signals above.
# job_submit_failed: TensorPix refused the job (or the local Credits threshold did); it
# ends ``rejected`` and is never retried. Arguments: ``job``, ``message``.
job_submit_failed = Signal()
# credits_low: the balance read before a submission is below CREDITS_MIN_BALANCE.
# ``sender=Job``; arguments ``account`` (alias), ``balance`` and ``threshold`` (Decimals).
credits_low = Signal()
# job_archived: a finished job's output was copied to ARCHIVE_STORAGE. Argument ``job``.
job_archived = Signal()
