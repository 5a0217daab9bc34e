"""Turning TensorPix payloads into rows: idempotent, bulk, and never an HTTP call.

``sync_<things>(payloads, account=...)`` takes one page of payloads (dicts as the client
returns them) and creates or updates the matching rows by ``(account, tensorpix_id)``,
nested objects included, in one transaction and a constant number of queries per page.
The whole page is checked first: a malformed payload raises
:class:`~django_tensorpix.exceptions.MalformedPayload` and nothing is written.

``sync_<thing>(payload, account=...)`` does the same for one object and returns its row.
:func:`sync_pages` runs a full sync of one kind over a stream of pages and then marks the
rows TensorPix no longer returned (``missing_remote``) instead of deleting them.

What counts as a change (and sends ``post_save``): a TensorPix field with a different
value, presigned URLs compared without their query string, fields TensorPix added later
included. A row that did not change is still refreshed (fresh URLs, ``synced_at``) but
sends nothing, so periodic syncs do not wake receivers up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.db import models, router, transaction
from django.utils import timezone

from django_tensorpix.conf import DEFAULT_ACCOUNT
from django_tensorpix.enums import JobEventKind
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync.jobs import decide_transition, sync_job_page
from django_tensorpix.sync.payloads import Invalid, ObjectSpec, Parsed
from django_tensorpix.sync.rows import RowChange, lock_for_sync, send_post_save, upsert_page
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

__all__ = [
    "SYNC_KINDS",
    "SyncResult",
    "decide_transition",
    "mark_missing_remote",
    "sync_job",
    "sync_jobs",
    "sync_ml_model",
    "sync_ml_models",
    "sync_pages",
    "sync_restored_video",
    "sync_restored_videos",
    "sync_video",
    "sync_videos",
]


@dataclass
class SyncResult:
    """Counts of what a sync did to the rows of the objects it was given (not nested ones)."""

    created: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    missing: int = 0

    @property
    def seen(self) -> int:
        return self.created + self.changed + self.unchanged + self.stale

    def __add__(self, other: SyncResult) -> SyncResult:
        return SyncResult(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @classmethod
    def of(cls, changes: Iterable[RowChange]) -> SyncResult:
        result = cls()
        for change in changes:
            if change.stale:
                result.stale += 1
            elif change.created:
                result.created += 1
            elif change.changed:
                result.changed += 1
            else:
                result.unchanged += 1
        return result


def sync_jobs(payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT) -> SyncResult:
    """Upsert one page of ``Job`` payloads with their input/output videos and ML models."""
    parsed = [JOB.parse(payload) for payload in payloads]
    _check_outputs_are_unique(parsed)
    return SyncResult.of(sync_job_page(parsed, account=account).changes.values())


def sync_job(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> Job:
    """Upsert one ``Job`` payload (e.g. a poll's answer); returns the row, stale or not."""
    parsed = JOB.parse(payload)
    page = sync_job_page([parsed], account=account)
    job: Job = page.changes[parsed.tensorpix_id].instance
    return job


def sync_videos(payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT) -> SyncResult:
    return SyncResult.of(_sync_flat(VIDEO, Video, payloads, account).values())


def sync_video(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> Video:
    video: Video = _sync_one(VIDEO, Video, payload, account)
    return video


def sync_restored_videos(payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT) -> SyncResult:
    return SyncResult.of(_sync_flat(RESTORED_VIDEO, RestoredVideo, payloads, account).values())


def sync_restored_video(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> RestoredVideo:
    video: RestoredVideo = _sync_one(RESTORED_VIDEO, RestoredVideo, payload, account)
    return video


def sync_ml_models(payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT) -> SyncResult:
    return SyncResult.of(_sync_flat(ML_MODEL, MLModel, payloads, account).values())


def sync_ml_model(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> MLModel:
    ml_model: MLModel = _sync_one(ML_MODEL, MLModel, payload, account)
    return ml_model


def _sync_flat(
    spec: ObjectSpec, model: type[models.Model], payloads: Sequence[Any], account: str
) -> dict[int, RowChange]:
    parsed = [spec.parse(payload) for payload in payloads]
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        lock_for_sync([model], account=account, using=using)
        now = timezone.now()  # after the lock, as in ``sync_job_page``
        changes = upsert_page(spec, model, parsed, account=account, now=now, using=using)
        send_post_save(changes.values(), using=using)
    return changes


def _sync_one(spec: ObjectSpec, model: type[models.Model], payload: Any, account: str) -> Any:
    (change,) = _sync_flat(spec, model, [payload], account).values()
    return change.instance


def _check_outputs_are_unique(parsed: list[Parsed]) -> None:
    """Two jobs of one page cannot share an output video (a one-to-one link)."""
    owners: dict[int, int] = {}
    for job in parsed:
        output = job.values["output_video"]
        if output is None:
            continue
        owner = owners.setdefault(output.tensorpix_id, job.tensorpix_id)
        if owner != job.tensorpix_id:
            reason = f"restored video {output.tensorpix_id} is also job {owner}'s output"
            raise JOB.malformed(job.raw, Invalid(reason, "output_video.id"))


@dataclass(frozen=True)
class SyncKind:
    """One kind of TensorPix object the full sync knows: its page sync and its model."""

    name: str
    model: type[models.Model]
    sync_page: Callable[..., SyncResult]
    client_method: str


SYNC_KINDS = {
    kind.name: kind
    for kind in (
        SyncKind("ml-models", MLModel, sync_ml_models, "iter_ml_model_pages"),
        SyncKind("videos", Video, sync_videos, "iter_video_pages"),
        SyncKind(
            "restored-videos", RestoredVideo, sync_restored_videos, "iter_restored_video_pages"
        ),
        SyncKind("jobs", Job, sync_jobs, "iter_job_pages"),
    )
}


def sync_pages(
    kind: str,
    pages: Iterable[Sequence[Any]],
    *,
    account: str = DEFAULT_ACCOUNT,
    mark_missing: bool = True,
    on_page: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Sync every page of one kind (``"jobs"``, ``"videos"``...), streamed: one page in memory.

    Only when the pages ran out without an error, rows of that kind TensorPix did not
    return are marked ``missing_remote`` (see :func:`mark_missing_remote`). ``on_page``
    gets the running totals after each page.
    """
    sync_kind = SYNC_KINDS[kind]
    started = timezone.now()
    result = SyncResult()
    for page in pages:
        result = result + sync_kind.sync_page(page, account=account)
        if on_page is not None:
            on_page(result)
    if mark_missing:
        result.missing = mark_missing_remote(
            sync_kind.model, account=account, not_seen_since=started
        )
    return result


def mark_missing_remote(
    model: type[models.Model], *, account: str, not_seen_since: datetime
) -> int:
    """Flag the rows a complete listing did not return; returns how many were newly flagged.

    A row counts as returned when its ``synced_at`` is at or after ``not_seen_since`` (any
    sync moves it, a poll or a nested copy in a job included). Rows never synced (not
    submitted yet) are left alone, and so are videos with an ``external_url``: inputs of
    jobs created from a URL, which TensorPix's video list never includes. Jobs get a
    ``missing_remote`` event. A row that shows up again is unflagged by the next sync.
    """
    now = timezone.now()
    using = router.db_for_write(model)
    queryset = model._default_manager.using(using).filter(
        account=account, missing_remote=False, synced_at__lt=not_seen_since
    )
    if model is Video:
        queryset = queryset.filter(external_url__isnull=True)
    with transaction.atomic(using=using):
        lock_for_sync([model], account=account, using=using)
        pks = list(queryset.select_for_update().values_list("pk", flat=True))
        if not pks:
            return 0
        queryset.update(missing_remote=True, missing_since=now)
        if model is Job:
            JobEvent.objects.using(using).bulk_create(
                JobEvent(job_id=pk, at=now, kind=JobEventKind.MISSING_REMOTE) for pk in pks
            )
    return len(pks)
