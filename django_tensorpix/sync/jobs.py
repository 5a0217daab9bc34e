"""Syncing job pages: nested objects, ML model links, and the one place a status changes.

A page of jobs costs a constant number of queries whatever its size: the sync lock (on
PostgreSQL), the page's job rows (locked), then for ML models, input videos and output
videos one read and one write each, one upsert of the jobs, one read / delete / insert of
ML model links, one insert of events.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import router, transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed
from django.utils import timezone

from django_tensorpix import signals
from django_tensorpix.enums import JobEventKind, JobStatus, SubmissionState
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync import dispatch
from django_tensorpix.sync.payloads import Parsed
from django_tensorpix.sync.rows import (
    BOOKKEEPING_FIELDS,
    RowChange,
    apply_payload,
    insert_links,
    insert_rows,
    last_per_id,
    lock_for_sync,
    mark_seen,
    new_row,
    read_existing,
    save_rows,
    send_post_save,
    upsert_page,
)
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

logger = logging.getLogger(__name__)

JOB_UPDATE_FIELDS = [
    *JOB.column_names(),
    "input_video",
    "output_video",
    "status_changed_at",
    *BOOKKEEPING_FIELDS,
]
# Every model a page of jobs writes: all are locked together (see ``lock_for_sync``).
JOB_PAGE_MODELS = (Job, MLModel, Video, RestoredVideo)


@dataclass(frozen=True)
class Transition:
    """The verdict on a payload for a job: applied or stale, and the status move it makes."""

    accepted: bool
    old_status: int | None
    new_status: int | None

    @property
    def status_changed(self) -> bool:
        return self.accepted and self.old_status != self.new_status


def decide_transition(job: Job | None, parsed: Parsed) -> Transition:
    """Whether a payload may update a job: the only place a job's status is decided.

    Monotonic: a job in a final status never leaves it, and within one status
    ``processing_progress`` never goes back; a payload that would do either is stale (read
    before one we already applied) and is ignored as a whole. A stored progress outside
    0-1 is not trusted for that comparison. Any other move is TensorPix's
    word, including to or from a status this version does not know, and back to In Queue
    (TensorPix may requeue a job whose GPU server went away).
    """
    new_status = parsed.values["status"]
    if job is None or job.status is None:
        return Transition(True, None, new_status)
    old_status = job.status
    if JobStatus.value_is_terminal(old_status) and new_status != old_status:
        return Transition(False, old_status, new_status)
    new_progress = parsed.values["processing_progress"]
    progress = job.processing_progress
    # Only a progress within TensorPix's documented 0-1 counts: a stored 2 (a TensorPix
    # glitch) would otherwise make every later payload of the status look stale.
    in_range = progress is not None and 0.0 <= progress <= 1.0
    if new_status == old_status and in_range and new_progress < progress:
        return Transition(False, old_status, new_status)
    return Transition(True, old_status, new_status)


@dataclass
class JobPage:
    """What syncing one page of jobs did, by TensorPix id."""

    changes: dict[int, RowChange]


def sync_job_page(parsed_jobs: Iterable[Parsed], *, account: str) -> JobPage:
    jobs = last_per_id(parsed_jobs)
    using = router.db_for_write(Job)
    with transaction.atomic(using=using):
        lock_for_sync(JOB_PAGE_MODELS, account=account, using=using)
        # Read the clock once the lock is held: a sync that waited must not stamp rows
        # with a time before the sync it waited for (a full listing would then flag them
        # missing, as not seen since it started).
        now = timezone.now()
        existing = read_existing(
            Job, account, [job.tensorpix_id for job in jobs], using=using, lock=True
        )
        transitions = {
            job.tensorpix_id: decide_transition(existing.get(job.tensorpix_id), job) for job in jobs
        }
        old_progress = {job_id: row.processing_progress for job_id, row in existing.items()}
        accepted = [job for job in jobs if transitions[job.tensorpix_id].accepted]
        nested = _upsert_nested(accepted, account=account, now=now, using=using)
        changes = {}
        for job in jobs:
            row = existing.get(job.tensorpix_id)
            if transitions[job.tensorpix_id].accepted:
                changes[job.tensorpix_id] = _apply_job(job, row, nested, account=account, now=now)
            else:
                mark_seen(row, now)
                changes[job.tensorpix_id] = RowChange(row, created=False, changed=set(), stale=True)
        for job_id, transition in transitions.items():
            if transition.status_changed:
                changes[job_id].instance.status_changed_at = now
        _release_claimed_outputs(accepted, changes, nested.restored_videos, using=using)
        save_rows(Job, changes.values(), JOB_UPDATE_FIELDS, now=now, using=using)
        links = _link_ml_models(accepted, changes, nested.ml_models, using=using)
        _record_transitions(changes, transitions, now=now, using=using)
        _send_progress_on_commit(changes, old_progress, using=using)
        for group in (nested.ml_models, nested.videos, nested.restored_videos, changes):
            send_post_save(group.values(), using=using)
        _send_m2m_changed(changes, links, using=using)
    return JobPage(changes)


def _release_claimed_outputs(
    jobs: list[Parsed],
    changes: dict[int, RowChange],
    restored_videos: dict[int, RowChange],
    *,
    using: str,
) -> None:
    """Detach an output video from the job that had it when another job now claims it.

    ``Job.output_video`` is one-to-one, and TensorPix's word on a later read wins: when a
    job of this page names an output another job still holds (read on another page or in
    another run), the link moves. The job that loses it is updated in bulk and sends no
    ``post_save``. One query, and only when a known output changes hands.
    """
    claims = Q()
    for job in jobs:
        change = changes[job.tensorpix_id]
        output = job.values["output_video"]
        if output is None or restored_videos[output.tensorpix_id].created:
            continue
        if not (change.created or "output_video" in change.changed):
            continue
        claims |= Q(output_video_id=restored_videos[output.tensorpix_id].instance.pk) & ~Q(
            pk=change.instance.pk
        )
    if claims:
        Job._default_manager.using(using).filter(claims).update(output_video=None)


@dataclass
class NestedRows:
    ml_models: dict[int, RowChange]
    videos: dict[int, RowChange]
    restored_videos: dict[int, RowChange]


def job_remote_data(raw: dict[str, Any]) -> dict[str, Any]:
    """A job's payload as kept in ``remote_data``: nested objects by reference, ``{"id": N}``.

    Their full payloads live in their own rows' ``remote_data``; keeping them here too would
    double the JSON written per job, and a finished job's presigned output URLs (re-signed
    on every read) would make its own payload differ on every sync.
    """
    kept = dict(raw)
    for name in ("input_video", "output_video"):
        if isinstance(raw.get(name), dict):
            kept[name] = {"id": raw[name]["id"]}
    kept["ml_models"] = [{"id": model["id"]} for model in raw["ml_models"]]
    return kept


def _upsert_nested(jobs: list[Parsed], *, account: str, now: datetime, using: str) -> NestedRows:
    def upsert(spec: Any, model: Any, items: Iterable[Parsed | None]) -> dict[int, RowChange]:
        present = [item for item in items if item is not None]
        return upsert_page(spec, model, present, account=account, now=now, using=using)

    values = [job.values for job in jobs]
    return NestedRows(
        ml_models=upsert(ML_MODEL, MLModel, [m for v in values for m in v["ml_models"]]),
        videos=upsert(VIDEO, Video, [v["input_video"] for v in values]),
        restored_videos=upsert(RESTORED_VIDEO, RestoredVideo, [v["output_video"] for v in values]),
    )


def _apply_job(
    job: Parsed, row: Job | None, nested: NestedRows, *, account: str, now: datetime
) -> RowChange:
    change = apply_payload(
        JOB,
        Job,
        job,
        row,
        account=account,
        now=now,
        defaults={"submission_state": SubmissionState.SUBMITTED},
        remote_data=job_remote_data(job.raw),
    )
    instance = change.instance
    links = (
        ("input_video", nested.videos),
        ("output_video", nested.restored_videos),
    )
    for name, rows in links:
        payload = job.values[name]
        target = rows[payload.tensorpix_id].instance if payload is not None else None
        field: Any = Job._meta.get_field(name)
        pk = target.pk if target is not None else None
        if getattr(instance, field.attname) != pk:
            change.changed.add(name)
        # ``job.output_video = target`` without the descriptor: it would also cache the
        # job on the restored video (``output_of``, one-to-one), a reference cycle that
        # keeps every page's rows alive until Python's cyclic GC runs, so peak memory
        # grew with the length of a sync. ``job.<name>`` is cached as it would be.
        setattr(instance, field.attname, pk)
        field.set_cached_value(instance, target)
    if change.created:
        change.changed.clear()
    elif change.changed:
        change.identical = False
    return change


def _link_ml_models(
    jobs: list[Parsed],
    changes: dict[int, RowChange],
    ml_models: dict[int, RowChange],
    *,
    using: str,
) -> dict[int, tuple[set[int], set[int]]]:
    """Make each job's ML model links match its payload: one read, one delete, one insert.

    Returns the ML model pks added and removed, by job pk, for ``m2m_changed``.
    """
    through = Job.ml_models.through
    links = through._default_manager.using(using)
    wanted = {
        changes[job.tensorpix_id].instance.pk: {
            ml_models[model.tensorpix_id].instance.pk for model in job.values["ml_models"]
        }
        for job in jobs
    }
    current: dict[int, set[int]] = {job_pk: set() for job_pk in wanted}
    obsolete = []
    removed: dict[int, set[int]] = {job_pk: set() for job_pk in wanted}
    known_jobs = [
        changes[job.tensorpix_id].instance.pk
        for job in jobs
        if not changes[job.tensorpix_id].created
    ]
    if known_jobs:
        rows = links.filter(job_id__in=known_jobs).values_list("id", "job_id", "mlmodel_id")
        for link_id, job_pk, model_pk in rows:
            current[job_pk].add(model_pk)
            if model_pk not in wanted[job_pk]:
                obsolete.append(link_id)
                removed[job_pk].add(model_pk)
    if obsolete:
        links.filter(id__in=obsolete).delete()
    new_links = [
        (job_pk, model_pk)
        for job_pk, model_pks in wanted.items()
        for model_pk in model_pks - current[job_pk]
    ]
    # The sync lock already keeps two syncs from inserting the same link; ON CONFLICT
    # DO NOTHING keeps a writer that does not take it (host code) from failing the page.
    insert_links(through, ("job_id", "mlmodel_id"), new_links, using=using)
    return {
        job_pk: (wanted[job_pk] - current[job_pk], removed[job_pk])
        for job_pk in wanted
        if wanted[job_pk] != current[job_pk]
    }


def _send_m2m_changed(
    changes: dict[int, RowChange], links: dict[int, tuple[set[int], set[int]]], *, using: str
) -> None:
    """``m2m_changed`` for the ML model links, as ``job.ml_models.remove()/add()`` sends it.

    Only the ``post_remove`` and ``post_add`` actions: the links are written in bulk before
    any signal, so there is no "before" to announce. Sent after the jobs' ``post_save``.
    """
    through = Job.ml_models.through
    for change in changes.values():
        job = change.instance
        if job.pk not in links:
            continue
        added, removed = links[job.pk]
        for action, pk_set in (("post_remove", removed), ("post_add", added)):
            if pk_set:
                m2m_changed.send(
                    sender=through,
                    instance=job,
                    action=action,
                    reverse=False,
                    model=MLModel,
                    pk_set=set(pk_set),
                    using=using,
                )


def _record_transitions(
    changes: dict[int, RowChange],
    transitions: dict[int, Transition],
    *,
    now: datetime,
    using: str,
) -> None:
    """One event row per status change, in this transaction; its signals once it commits.

    The events are written undispatched, under the lease of this process: see
    :mod:`django_tensorpix.sync.dispatch` for what happens if it dies before sending.
    """
    events = []
    lease = dispatch.dispatch_lease(now)
    for job_id, transition in transitions.items():
        if not transition.status_changed:
            continue
        change = changes[job_id]
        event = new_row(
            JobEvent,
            {
                "job_id": change.instance.pk,
                "at": now,
                "kind": JobEventKind.STATUS,
                "old_value": _status_text(transition.old_status),
                "new_value": _status_text(transition.new_status),
                "dispatch_lease_until": lease,
            },
        )
        event.job = change.instance
        events.append((event, change.instance, change.created))
    if events:
        insert_rows(JobEvent, [event for event, _, _ in events], using=using)
        dispatch.dispatch_on_commit(events, using=using)


def _status_text(status: int | None) -> str:
    return "" if status is None else str(status)


def _send_progress_on_commit(
    changes: dict[int, RowChange], old_progress: dict[int, float | None], *, using: str
) -> None:
    """``job_progress`` for each job whose stored progress moved (best effort, not durable).

    One ``on_commit`` callback for the page (registering one per job cost more than the
    signals), robust per job as ``on_commit(robust=True)`` is per callback: a receiver
    that raises is logged and the next job's signal is still sent.
    """
    moved = []
    for job_id, change in changes.items():
        if change.stale:
            continue
        old, new = old_progress.get(job_id), change.instance.processing_progress
        if new is None or old == new:
            continue
        moved.append((change.instance, old, new))
    if moved:
        transaction.on_commit(partial(_send_progress, moved), using=using)


def _send_progress(moved: list[tuple[Job, float | None, float]]) -> None:
    for job, old, new in moved:
        try:
            signals.job_progress.send(sender=Job, job=job, old_progress=old, new_progress=new)
        except Exception:
            logger.exception("A receiver of job_progress failed for %s.", job)
