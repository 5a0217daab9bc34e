"""Turning TensorPix payloads into rows: idempotent, bulk, and no HTTP of its own.

(:func:`sync_full_listing` iterates a client's listing; every request is the client's.)

The public API (other modules, tasks and host code use these names):

* ``sync_<things>(payloads, account=..., skip_malformed=False)`` takes one page of payloads
  (dicts as the client returns them) and creates or updates the matching rows by
  ``(account, tensorpix_id)``, nested objects included, in one transaction and a constant
  number of queries per page. The whole page is checked first: a malformed payload raises
  :class:`~django_tensorpix.exceptions.MalformedPayload` and nothing is written; with
  ``skip_malformed=True`` the bad objects are left out and reported in
  :attr:`SyncResult.skipped` instead, and the rest of the page is synced.
* ``sync_<thing>(payload, account=...)`` does the same for one object and returns its row.
* :func:`sync_pages` syncs a stream of pages of one kind, skipping (and reporting) malformed
  objects. It never flags anything: it cannot know the stream is a whole listing.
* :func:`sync_full_listing` reads one kind's whole listing through a client and, only when
  it ended without an error, flags the rows TensorPix no longer returned
  (``missing_remote``) instead of deleting them: the one destructive entry point.
* :func:`mark_missing_remote`, :func:`decide_transition` (the only place a job's status is
  decided) and :func:`lock_for_sync` (what a page takes before reading, on PostgreSQL;
  other writers of mirrored rows, e.g. a fast write path, must take it too).

What counts as a change (and sends ``post_save``): a TensorPix field with a different
value, presigned URLs compared without their query string, fields TensorPix added later
included. A row that did not change is still refreshed (fresh URLs, ``synced_at``) but
sends nothing, so periodic syncs do not wake receivers up. The signals sent are listed
in :mod:`django_tensorpix.signals`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from django.db import models, router, transaction
from django.utils import timezone

from django_tensorpix.client import Page, TensorPixClient
from django_tensorpix.conf import DEFAULT_ACCOUNT
from django_tensorpix.enums import JobEventKind
from django_tensorpix.exceptions import MalformedPayload
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync.jobs import decide_transition, sync_job_page
from django_tensorpix.sync.payloads import Invalid, ObjectSpec, Parsed
from django_tensorpix.sync.rows import RowChange, lock_for_sync, send_post_save, upsert_page
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

__all__ = [
    "SYNC_KINDS",
    "SkippedObject",
    "SyncKind",
    "SyncResult",
    "decide_transition",
    "lock_for_sync",
    "mark_missing_remote",
    "sync_full_listing",
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

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedObject:
    """A malformed object a sync left out: its type, id (if it had a usable one) and why."""

    object_type: str
    tensorpix_id: int | None
    field: str
    reason: str

    @classmethod
    def of(cls, payload: Any, error: MalformedPayload) -> SkippedObject:
        raw_id = payload.get("id") if isinstance(payload, dict) else None
        usable = isinstance(raw_id, int) and not isinstance(raw_id, bool)
        return cls(error.object_type, raw_id if usable else None, error.field, str(error))


@dataclass
class SyncResult:
    """Counts of what a sync did to the rows of the objects it was given (not nested ones).

    ``skipped`` lists the malformed objects left out; ``expected`` is the size TensorPix
    announced for the listing (``count``), when a full listing was read.
    """

    created: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    missing: int = 0
    skipped: list[SkippedObject] = field(default_factory=list)
    expected: int | None = None

    @property
    def seen(self) -> int:
        return self.created + self.changed + self.unchanged + self.stale

    def __add__(self, other: SyncResult) -> SyncResult:
        counts = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name not in ("skipped", "expected")
        }
        expected = self.expected if other.expected is None else other.expected
        return SyncResult(**counts, skipped=self.skipped + other.skipped, expected=expected)

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


def sync_jobs(
    payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT, skip_malformed: bool = False
) -> SyncResult:
    """Upsert one page of ``Job`` payloads with their input/output videos and ML models.

    Two jobs of the page claiming one output video: the later one is malformed.
    """
    parsed, skipped = _parse_page(JOB, payloads, skip_malformed)
    parsed = _drop_shared_outputs(parsed, skipped, skip_malformed)
    result = SyncResult.of(sync_job_page(parsed, account=account).changes.values())
    result.skipped = skipped
    return result


def sync_job(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> Job:
    """Upsert one ``Job`` payload (e.g. a poll's answer); returns the row, stale or not."""
    parsed = JOB.parse(payload)
    page = sync_job_page([parsed], account=account)
    job: Job = page.changes[parsed.tensorpix_id].instance
    return job


def sync_videos(
    payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT, skip_malformed: bool = False
) -> SyncResult:
    return _sync_flat_page(VIDEO, Video, payloads, account, skip_malformed)


def sync_video(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> Video:
    video: Video = _sync_one(VIDEO, Video, payload, account)
    return video


def sync_restored_videos(
    payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT, skip_malformed: bool = False
) -> SyncResult:
    return _sync_flat_page(RESTORED_VIDEO, RestoredVideo, payloads, account, skip_malformed)


def sync_restored_video(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> RestoredVideo:
    video: RestoredVideo = _sync_one(RESTORED_VIDEO, RestoredVideo, payload, account)
    return video


def sync_ml_models(
    payloads: Sequence[Any], *, account: str = DEFAULT_ACCOUNT, skip_malformed: bool = False
) -> SyncResult:
    return _sync_flat_page(ML_MODEL, MLModel, payloads, account, skip_malformed)


def sync_ml_model(payload: Any, *, account: str = DEFAULT_ACCOUNT) -> MLModel:
    ml_model: MLModel = _sync_one(ML_MODEL, MLModel, payload, account)
    return ml_model


def _parse_page(
    spec: ObjectSpec, payloads: Sequence[Any], skip_malformed: bool
) -> tuple[list[Parsed], list[SkippedObject]]:
    """Check every payload of a page; malformed ones raise, or are reported and left out."""
    parsed: list[Parsed] = []
    skipped: list[SkippedObject] = []
    for payload in payloads:
        try:
            parsed.append(spec.parse(payload))
        except MalformedPayload as error:
            if not skip_malformed:
                raise
            skipped.append(SkippedObject.of(payload, error))
            logger.warning("Skipped a malformed TensorPix object: %s", error)
    return parsed, skipped


def _sync_flat_page(
    spec: ObjectSpec,
    model: type[models.Model],
    payloads: Sequence[Any],
    account: str,
    skip_malformed: bool,
) -> SyncResult:
    parsed, skipped = _parse_page(spec, payloads, skip_malformed)
    result = SyncResult.of(_sync_flat(spec, model, parsed, account).values())
    result.skipped = skipped
    return result


def _sync_flat(
    spec: ObjectSpec, model: type[models.Model], parsed: list[Parsed], account: str
) -> dict[int, RowChange]:
    using = router.db_for_write(model)
    with transaction.atomic(using=using):
        lock_for_sync([model], account=account, using=using)
        now = timezone.now()  # after the lock, as in ``sync_job_page``
        changes = upsert_page(spec, model, parsed, account=account, now=now, using=using)
        send_post_save(changes.values(), using=using)
    return changes


def _sync_one(spec: ObjectSpec, model: type[models.Model], payload: Any, account: str) -> Any:
    (change,) = _sync_flat(spec, model, [spec.parse(payload)], account).values()
    return change.instance


def _drop_shared_outputs(
    parsed: list[Parsed], skipped: list[SkippedObject], skip_malformed: bool
) -> list[Parsed]:
    """Two jobs of one page cannot share an output video (a one-to-one link): the second
    is malformed. (Across pages or runs, the link moves to the job that claims it last.)
    """
    owners: dict[int, int] = {}
    kept = []
    for job in parsed:
        output = job.values["output_video"]
        if output is not None:
            owner = owners.setdefault(output.tensorpix_id, job.tensorpix_id)
            if owner != job.tensorpix_id:
                reason = f"restored video {output.tensorpix_id} is also job {owner}'s output"
                error = JOB.malformed(job.raw, Invalid(reason, "output_video.id"))
                if not skip_malformed:
                    raise error
                skipped.append(SkippedObject.of(job.raw, error))
                continue
        kept.append(job)
    return kept


@dataclass(frozen=True)
class SyncKind:
    """One kind of TensorPix object the full sync knows: its page sync, model and listing."""

    name: str
    model: type[models.Model]
    sync_page: Callable[..., SyncResult]
    list_pages: Callable[[TensorPixClient], Iterator[Page[Any]]]


SYNC_KINDS = {
    kind.name: kind
    for kind in (
        SyncKind("ml-models", MLModel, sync_ml_models, lambda c: c.iter_ml_model_pages()),
        SyncKind("videos", Video, sync_videos, lambda c: c.iter_video_pages()),
        SyncKind(
            "restored-videos",
            RestoredVideo,
            sync_restored_videos,
            lambda c: c.iter_restored_video_pages(),
        ),
        SyncKind("jobs", Job, sync_jobs, lambda c: c.iter_job_pages()),
    )
}


def sync_pages(
    kind: str,
    pages: Iterable[Sequence[Any]],
    *,
    account: str = DEFAULT_ACCOUNT,
    on_page: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Sync a stream of pages of one kind (``"jobs"``, ``"videos"``...): one page in memory.

    Safe for any stream, partial or whole: it creates and updates rows, never flags any.
    Malformed objects are left out and reported in ``skipped``. ``on_page`` gets the
    running totals after each page. To also flag what TensorPix no longer lists, use
    :func:`sync_full_listing`.
    """
    sync_kind = SYNC_KINDS[kind]
    result = SyncResult()
    for page in pages:
        page_result = sync_kind.sync_page(page, account=account, skip_malformed=True)
        page_result.expected = getattr(page, "total", None)
        result = result + page_result
        if on_page is not None:
            on_page(result)
    return result


def sync_full_listing(
    kind: str,
    client: TensorPixClient,
    *,
    on_page: Callable[[SyncResult], None] | None = None,
) -> SyncResult:
    """Read one kind's whole listing through ``client``, sync it, then flag what is gone.

    The destructive entry point, and the only one: rows of that kind and of the client's
    account that the listing did not return are flagged ``missing_remote`` (see
    :func:`mark_missing_remote`), and only once the listing ended without an error. Rows of
    objects that were listed but skipped as malformed are not flagged; if one had no usable
    id, nothing is flagged this time (it could be any row). The account is the client's,
    so the listing and the rows it is compared with cannot belong to different accounts.
    """
    sync_kind = SYNC_KINDS[kind]
    account = client.account.alias
    started = timezone.now()
    result = sync_pages(kind, sync_kind.list_pages(client), account=account, on_page=on_page)
    skipped_ids = {skipped.tensorpix_id for skipped in result.skipped}
    if None in skipped_ids:
        logger.warning(
            "Not flagging missing %s of account %r: a malformed object without a usable id "
            "was skipped.",
            kind,
            account,
        )
        return result
    result.missing = mark_missing_remote(
        sync_kind.model,
        account=account,
        not_seen_since=started,
        keep={i for i in skipped_ids if i is not None},
    )
    return result


def mark_missing_remote(
    model: type[models.Model],
    *,
    account: str,
    not_seen_since: datetime,
    keep: Iterable[int] = (),
) -> int:
    """Flag the rows a complete listing did not return; returns how many were newly flagged.

    A row counts as returned when its ``synced_at`` is at or after ``not_seen_since`` (any
    sync moves it, a poll or a nested copy in a job included). Rows never synced (not
    submitted yet) are left alone, and so are videos with an ``external_url``: inputs of
    jobs created from a URL, which TensorPix's video list never includes, and the rows of
    the TensorPix ids in ``keep`` (listed, but skipped as malformed). Jobs get a
    ``missing_remote`` event. A row that shows up again is unflagged by the next sync.
    """
    now = timezone.now()
    using = router.db_for_write(model)
    queryset = model._default_manager.using(using).filter(
        account=account, missing_remote=False, synced_at__lt=not_seen_since
    )
    if model is Video:
        queryset = queryset.filter(external_url__isnull=True)
    keep = list(keep)
    if keep:
        queryset = queryset.exclude(tensorpix_id__in=keep)
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
