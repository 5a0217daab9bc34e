"""Upserting one page of checked payloads for one model, in a constant number of queries.

The page's existing rows are read in one query and the diff is computed in Python.
Rows that differ from what is stored are written by one ``INSERT ... ON CONFLICT
(account, tensorpix_id) DO UPDATE`` (Django's ``bulk_create(update_conflicts=True)``; two
statements when the page mixes new and known rows); rows whose payload is exactly the
stored one only get their ``synced_at`` moved, by one ``UPDATE``. Reading first is what
tells created from changed from unchanged, which ``bulk_create`` alone cannot.

A row whose TensorPix fields did not change sends no ``post_save``, even when it is
written (a re-signed URL is still stored). ``synced_at`` moves either way: a full sync
relies on it to find the rows TensorPix no longer returns.

Concurrent syncs (two ``tensorpix_sync`` processes, a sync and a poll of one of its jobs)
are serialised per model and account by :func:`lock_for_sync`, a PostgreSQL transaction
advisory lock taken before anything is read. Reading first and then writing is only
honest when no one else inserts the same rows in between: without the lock both syncs
saw "no row yet", both counted the rows as created and both inserted the same ML model
links (an ``IntegrityError``). The lock is held for one page's transaction, so a poll
waits at most for one page.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, models
from django.db.models.base import ModelState
from django.db.models.fields.files import FileDescriptor
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, post_save, pre_init

from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.sync.payloads import ObjectSpec, Parsed, same_payload

# Columns the sync owns besides TensorPix's fields. Local columns (a job's polling and
# submission fields, its user...) are never in the ON CONFLICT update, so a concurrent
# poller or submitter does not lose its writes.
BOOKKEEPING_FIELDS = ["remote_data", "synced_at", "missing_remote", "missing_since"]
REMOTE_KEY = ["account", "tensorpix_id"]


@dataclass
class RowChange:
    """What the sync did to one row; ``changed`` names the TensorPix fields that changed."""

    instance: Any
    created: bool
    changed: set[str]
    stale: bool = False
    # TensorPix sent exactly what is stored: only ``synced_at`` needs to move.
    identical: bool = False

    @property
    def is_change(self) -> bool:
        return self.created or bool(self.changed)


def lock_for_sync(model_classes: Iterable[type[models.Model]], *, account: str, using: str) -> None:
    """Wait until no other transaction syncs rows of these models for ``account``.

    A PostgreSQL transaction-level advisory lock per (table, account), released at commit;
    call it first in the transaction, before any read. The locks are taken in the order of
    their keys, the same in every process, so two syncs touching several models cannot
    deadlock. Do not call the sync inside a transaction that already holds row locks on
    mirrored rows: it could wait on a sync that waits on those rows. A no-op on other
    databases (SQLite serialises writers itself).
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    keys = sorted({_lock_key(model._meta.db_table, account) for model in model_classes})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(key) FROM unnest(%s::bigint[]) AS key", [keys])


def _lock_key(table: str, account: str) -> int:
    digest = hashlib.blake2b(f"django_tensorpix:{table}:{account}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def last_per_id(items: Iterable[Parsed]) -> list[Parsed]:
    """One payload per TensorPix id, the last one seen (a later read is fresher)."""
    by_id = {item.tensorpix_id: item for item in items}
    return list(by_id.values())


def read_existing(
    model: Any,
    account: str,
    ids: Sequence[int],
    *,
    using: str,
    lock: bool = False,
) -> dict[int, Any]:
    if not ids:
        return {}
    if _fast_path(using):
        from django_tensorpix.sync import postgres  # here: it imports this module

        return postgres.read_existing(model, account, ids, using=using, lock=lock)
    queryset = model._default_manager.using(using).filter(account=account, tensorpix_id__in=ids)
    if lock:
        # Ordered, so two syncs of overlapping pages lock in the same order (no deadlock).
        queryset = queryset.select_for_update().order_by("pk")
    return {row.tensorpix_id: row for row in queryset}


def apply_payload(
    spec: ObjectSpec,
    model: type[models.Model],
    parsed: Parsed,
    existing: Any | None,
    *,
    account: str,
    now: datetime,
    defaults: dict[str, Any] | None = None,
    remote_data: dict[str, Any] | None = None,
) -> RowChange:
    """Set a row's columns from a payload (a new instance if there is no row yet).

    ``remote_data`` is what to keep of the payload, the payload itself by default.
    """
    stored = parsed.raw if remote_data is None else remote_data
    values = parsed.values
    columns = {name: values[name] for name in spec.columns}
    if existing is None:
        instance = new_row(
            model,
            {
                "account": account,
                "tensorpix_id": parsed.tensorpix_id,
                **columns,
                **(defaults or {}),
            },
        )
        change = RowChange(instance, created=True, changed=set())
    elif same_payload(existing.remote_data, stored) and not existing.missing_remote:
        change = RowChange(existing, created=False, changed=set(), identical=True)
    else:
        change = RowChange(existing, created=False, changed=spec.changed_fields(existing, parsed))
        for name, value in columns.items():
            setattr(existing, name, value)
    mark_seen(change.instance, now)
    change.instance.remote_data = stored
    return change


def new_row(model: type[models.Model], values: dict[str, Any]) -> Any:
    """``model(**values)``, built positionally as querysets build rows: twice as fast.

    ``values`` are keyed by attribute name (an unknown one raises ``KeyError``); every
    other column gets its default, as ``model(**values)`` would give it.
    """
    template = _TEMPLATES.get(model)
    if template is None:
        template = _TEMPLATES[model] = _RowTemplate(model)
    args = template.defaults.copy()
    for index, make in template.factories:
        args[index] = make()
    positions = template.positions
    for name, value in values.items():
        args[positions[name]] = value
    return template.build(args)


def row_from_db(model: type[models.Model], values: Sequence[Any], *, using: str) -> Any:
    """``model.from_db(using, <all concrete fields>, values)``, built as :func:`new_row` does."""
    template = _TEMPLATES.get(model)
    if template is None:
        template = _TEMPLATES[model] = _RowTemplate(model)
    instance = template.build(values)
    instance._state.adding = False
    instance._state.db = using
    return instance


# What a concrete field's attribute may be for ``__init__`` to do nothing but store the
# value (``ForeignKeyDeferredAttribute.__set__`` only clears a cache a new row lacks).
_PLAIN_ATTRIBUTES = (DeferredAttribute, ForeignKeyDeferredAttribute, FileDescriptor)


class _RowTemplate:
    """A model's column defaults, in column order; callable ones are called for each row."""

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        self.model = model
        self.attnames = [field.attname for field in fields]
        # ``Model.__init__`` with positional values sends pre_init, stores each value
        # through its class attribute, then sends post_init. When those attributes only
        # store the value (no ImageField, no custom descriptor) and nobody listens, a row
        # is the same built directly: a third of the cost, which adds up over a page.
        self.plain = not model._meta.abstract and all(
            type(model.__dict__.get(name)) in _PLAIN_ATTRIBUTES for name in self.attnames
        )
        self.positions = {field.attname: index for index, field in enumerate(fields)}
        self.factories = [
            (index, field.get_default)
            for index, field in enumerate(fields)
            if field.has_default() and callable(field.default)
        ]
        # Any other default is the same value for every row (Django hands out the same
        # object too): computed once.
        self.defaults = [field.get_default() for field in fields]

    def build(self, values: Sequence[Any]) -> Any:
        model = self.model
        if (
            not self.plain
            or (pre_init.receivers and pre_init.has_listeners(model))
            or (post_init.receivers and post_init.has_listeners(model))
        ):
            return model(*values)
        instance = model.__new__(model)
        instance._state = ModelState()
        instance.__dict__.update(zip(self.attnames, values, strict=True))
        return instance


_TEMPLATES: dict[type[models.Model], _RowTemplate] = {}


def mark_seen(instance: Any, now: datetime) -> None:
    instance.synced_at = now
    instance.missing_remote = False
    instance.missing_since = None


def save_rows(
    model: type[models.Model],
    changes: Iterable[RowChange],
    update_fields: list[str],
    *,
    now: datetime,
    using: str,
) -> None:
    """Upsert the rows that differ; only move ``synced_at`` of the identical and stale ones.

    Two statements at most (three when a page mixes new and known rows), whatever the
    page's size. On PostgreSQL, :mod:`~django_tensorpix.sync.postgres` writes the same
    rows with statements of its own (``TENSORPIX["SYNC_FAST_PATH"]``).
    """
    if _fast_path(using):
        from django_tensorpix.sync import postgres  # here: it imports this module

        postgres.save_rows(model, changes, update_fields, now=now, using=using)
        return
    changes = list(changes)
    written = [c.instance for c in changes if not (c.identical or c.stale)]
    touched = [c.instance.pk for c in changes if c.identical or c.stale]
    manager = model._default_manager.using(using)
    if written:
        manager.bulk_create(
            written,
            update_conflicts=True,
            unique_fields=REMOTE_KEY,
            update_fields=update_fields,
        )
    if touched:
        manager.filter(pk__in=touched).update(
            synced_at=now, missing_remote=False, missing_since=None
        )


def insert_rows(
    model: type[models.Model],
    instances: list[Any],
    *,
    using: str,
    ignore_conflicts: bool = False,
) -> None:
    """``bulk_create`` for rows the sync never reads back (links, events), fast on PostgreSQL."""
    if not instances:
        return
    if _fast_path(using):
        from django_tensorpix.sync import postgres  # here: it imports this module

        postgres.insert_rows(model, instances, using=using, ignore_conflicts=ignore_conflicts)
        return
    model._default_manager.using(using).bulk_create(instances, ignore_conflicts=ignore_conflicts)


def insert_links(
    through: type[models.Model],
    attnames: tuple[str, str],
    pairs: list[tuple[int, int]],
    *,
    using: str,
) -> None:
    """Insert many-to-many links given as pairs of primary keys; existing ones are kept.

    ``bulk_create(ignore_conflicts=True)`` of ``through`` rows; on PostgreSQL one
    ``INSERT ... SELECT FROM unnest(...)`` of two arrays, without building a row for each.
    """
    if not pairs:
        return
    if _fast_path(using):
        from django_tensorpix.sync import postgres  # here: it imports this module

        postgres.insert_links(through, attnames, pairs, using=using)
        return
    source, target = attnames
    through._default_manager.using(using).bulk_create(
        [through(**{source: a, target: b}) for a, b in pairs], ignore_conflicts=True
    )


def _fast_path(using: str) -> bool:
    return bool(tensorpix_settings.SYNC_FAST_PATH) and connections[using].vendor == "postgresql"


def upsert_page(
    spec: ObjectSpec,
    model: type[models.Model],
    items: Iterable[Parsed],
    *,
    account: str,
    now: datetime,
    using: str,
) -> dict[int, RowChange]:
    """Create or update the rows of one page; returns what happened, by TensorPix id."""
    unique = last_per_id(items)
    existing = read_existing(model, account, [item.tensorpix_id for item in unique], using=using)
    changes = {
        item.tensorpix_id: apply_payload(
            spec, model, item, existing.get(item.tensorpix_id), account=account, now=now
        )
        for item in unique
    }
    save_rows(
        model,
        changes.values(),
        spec.column_names() + BOOKKEEPING_FIELDS,
        now=now,
        using=using,
    )
    return changes


def send_post_save(changes: Iterable[RowChange], *, using: str) -> None:
    """``post_save`` for every created or changed row, as ``Model.save()`` would send it.

    The bulk path sends none by itself. ``update_fields`` is ``None`` for a created row and
    otherwise the names of the concrete fields that changed (TensorPix's columns,
    ``input_video``/``output_video``, ``remote_data`` for fields TensorPix added later),
    exactly what ``save(update_fields=...)`` accepts, so a receiver that re-saves with it
    works. Many-to-many changes (a job's ``ml_models``) are announced by ``m2m_changed``,
    as Django does. Like ``save()``'s, it fires inside the transaction: a receiver that
    starts a Celery task should do so in ``transaction.on_commit``.
    """
    for change in changes:
        if not change.is_change:
            continue
        model = type(change.instance)
        concrete = _concrete_names(model)  # type: ignore[arg-type]
        updated = frozenset(name for name in change.changed if name in concrete)
        if not change.created and not updated:
            continue
        post_save.send(
            sender=model,
            instance=change.instance,
            created=change.created,
            update_fields=None if change.created else updated,
            raw=False,
            using=using,
        )


@functools.cache
def _concrete_names(model: type[models.Model]) -> frozenset[str]:
    return frozenset(f.name for f in model._meta.concrete_fields)
