"""The sync's writes on PostgreSQL: one JSON document per table and statement.

Django's ``bulk_create(update_conflicts=True)`` compiles every value of every row in
Python (``get_db_prep_save``, ``UNNEST`` arrays dumped element by element): on a page of
jobs that is most of the sync's time. Here each statement gets the page's rows as a single
JSON text, an array of arrays (values in column order, no keys) made by the C encoder, and
PostgreSQL turns it into rows with ``jsonb_array_elements``, casting each value from its
JSON text to its column's type (the conversion a literal gets; the column's modifier
applies on assignment, so a too-long string fails as it would in an ``INSERT``).

Chosen by :func:`django_tensorpix.sync.rows.save_rows` (and ``read_existing``,
``insert_rows``, ``insert_links``) when the connection is PostgreSQL and
``TENSORPIX["SYNC_FAST_PATH"]`` is on. The rows, the diff and what is sent are decided
before, by the same code for every database; only the statements differ:

* new rows: ``INSERT ... SELECT ... ON CONFLICT (account, tensorpix_id) DO UPDATE`` of the
  same columns as the generic path, ``RETURNING`` their primary keys;
* known rows whose TensorPix fields changed: one ``UPDATE ... FROM`` of those columns;
* known rows where only presigned URLs were re-signed: one ``UPDATE`` of the URL columns,
  ``remote_data`` and the bookkeeping columns, nothing else;
* identical and stale rows: ``synced_at`` moved by one ``UPDATE ... WHERE id = ANY(...)``;
* ML model links: one ``INSERT ... SELECT FROM unnest(...)`` of two ``bigint[]``;
* reads of a page's known rows: one indexed ``SELECT``, date-times as microseconds since
  1970 (see :func:`read_existing`), rows built as ``Model.from_db`` builds them.

Everything runs through Django's cursor (so query logging, ``CaptureQueriesContext`` and
``django_assert_num_queries`` see it), with ordinary parameters: no temporary table, no
``COPY``, no server-side prepared statement, so it works for a role without ``TEMP`` and
behind a pooler in transaction mode.

Planner statistics: a table that was never analysed (autovacuum runs late, or is off) has
no idea that ``(account, tensorpix_id)`` is unique, and the page's read of existing rows
turns into a scan of the account, so a big first import goes quadratic. The first time a
process has written ``ANALYZE_AFTER_ROWS`` rows into a table, it analyses that table if
PostgreSQL has never done so (one statement, once per table and process).
"""

from __future__ import annotations

import functools
import json
import operator
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, cast

from django.db import connections, models
from django.db.models.fields.files import FieldFile

from django_tensorpix.models import Job, MLModel, RestoredVideo, Video
from django_tensorpix.sync.payloads import ObjectSpec
from django_tensorpix.sync.rows import BOOKKEEPING_FIELDS, RowChange, row_from_db
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

SPECS: dict[type[models.Model], ObjectSpec] = {
    MLModel: ML_MODEL,
    Video: VIDEO,
    RestoredVideo: RESTORED_VIDEO,
    Job: JOB,
}

ANALYZE_AFTER_ROWS = 1_000

_rows_written: dict[tuple[str, str], int] = {}
_statistics_checked: set[tuple[str, str]] = set()
_statistics_lock = threading.Lock()


def save_rows(
    model: type[models.Model],
    changes: Iterable[RowChange],
    update_fields: list[str],
    *,
    now: datetime,
    using: str,
) -> None:
    """Write one page's rows of ``model`` as ``rows.save_rows`` does: four statements at most."""
    table = Table.of(model, update_fields, using)
    created, changed, resigned, touched = [], [], [], []
    for change in changes:
        if change.stale or change.identical:
            touched.append(change.instance.pk)
        elif change.created:
            created.append(change.instance)
        elif change.changed:
            changed.append(change.instance)
        else:
            resigned.append(change.instance)
    with connections[using].cursor() as cursor:
        if created:
            table.upsert(cursor, created, using=using)
        if changed:
            table.update(cursor, changed, table.update_columns)
        if resigned:
            table.update(cursor, resigned, table.resigned_columns)
        if touched:
            cursor.execute(
                f"UPDATE {table.name} SET synced_at = %s, missing_remote = false, "
                "missing_since = NULL WHERE id = ANY(%s::bigint[])",
                [now, bigint_array(touched)],
            )
    count = len(created) + len(changed) + len(resigned) + len(touched)
    ensure_statistics(model, count, using=using)


def read_existing(
    model: type[models.Model], account: str, ids: Sequence[int], *, using: str, lock: bool
) -> dict[int, Any]:
    """``rows.read_existing`` without the ORM's per-row machinery: the same instances.

    One indexed read; ``lock`` takes the rows' locks in primary-key order, as the generic
    path does. Rows are built as a queryset's ``Model.from_db`` builds them, JSON columns
    decoded by ``JSONField.from_db_value`` (PostgreSQL's other types already arrive as
    the Python values Django uses).

    Date-times are read as microseconds since 1970 and made into the same aware UTC
    datetimes Django's loader makes (when the connection's time zone is UTC, as with
    ``USE_TZ`` and no database ``TIME_ZONE``): parsing their text in Python was a
    fifth of a re-sync's reading.
    """
    table = Table.of(model, [], using)
    connection = connections[using]
    as_epoch = connection.timezone is UTC
    sql = table.epoch_select_sql if as_epoch else table.select_sql
    sql += " ORDER BY id FOR UPDATE" if lock else ""
    with connection.cursor() as cursor:
        cursor.execute(sql, [account, bigint_array(ids)])
        rows = cursor.fetchall()
    existing = {}
    date_times = table.date_time_indexes if as_epoch else ()
    for row in rows:
        values = list(row)
        for index, field in table.json_fields:
            values[index] = field.from_db_value(values[index], None, connection)  # type: ignore[arg-type]
        for index in date_times:
            if values[index] is not None:
                values[index] = EPOCH + timedelta(microseconds=values[index])
        instance = row_from_db(model, values, using=using)
        existing[instance.tensorpix_id] = instance
    return existing


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def insert_rows(
    model: type[models.Model], instances: list[Any], *, using: str, ignore_conflicts: bool
) -> None:
    """``bulk_create`` for rows without a remote key (links, events), in one statement.

    Like ``bulk_create`` on PostgreSQL, the new primary keys are set on the instances
    (from ``RETURNING``, in the order of the rows), except with ``ignore_conflicts``.
    """
    table = Table.of(model, [], using)
    sql = table.insert_sql + (" ON CONFLICT DO NOTHING" if ignore_conflicts else " RETURNING id")
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [rows_json(instances, table.insert_columns)])
        if ignore_conflicts:
            return
        for instance, (pk,) in zip(instances, cursor.fetchall(), strict=True):
            instance.pk = pk
            instance._state.adding = False
            instance._state.db = using


def insert_links(
    through: type[models.Model],
    attnames: tuple[str, str],
    pairs: list[tuple[int, int]],
    *,
    using: str,
) -> None:
    """``rows.insert_links``: the pairs as two arrays, one statement, conflicts ignored."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = through._meta
    source, target = (quote(str(meta.get_field(name).column)) for name in attnames)  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({source}, {target}) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
            [bigint_array(a for a, _ in pairs), bigint_array(b for _, b in pairs)],
        )


def bigint_array(values: Iterable[int]) -> str:
    """A ``bigint[]`` parameter as its text (``{1,2,3}``), for a ``%s::bigint[]`` cast.

    psycopg adapts a list of integers element by element in Python; the text is made
    at C speed and PostgreSQL's array input checks every element all the same.
    """
    return "{" + ",".join(map(str, values)) + "}"


# (column, attribute, type): the column's name, where the value is, its type without
# modifier (the statement casts to it; assigning to the column applies the modifier, so a
# too-long string fails as it would with a literal, instead of being cut).
Columns = list[tuple[str, str, str]]


class Table:
    """The statements for one model and one list of updated fields, built once."""

    _cache: ClassVar[dict[tuple[type[models.Model], tuple[str, ...]], Table]] = {}

    @classmethod
    def of(cls, model: type[models.Model], update_fields: list[str], using: str) -> Table:
        key = (model, tuple(update_fields))
        table = cls._cache.get(key)
        if table is None:
            table = cls._cache[key] = cls(model, update_fields, connections[using])
        return table

    def __init__(
        self, model: type[models.Model], update_fields: list[str], connection: Any
    ) -> None:
        meta = model._meta
        self.quote = quote = connection.ops.quote_name
        self.connection = connection
        self.name = quote(meta.db_table)
        self.insert_columns = columns(
            [f for f in meta.concrete_fields if not f.primary_key], connection
        )
        self.attnames = [str(f.attname) for f in meta.concrete_fields]
        self.json_fields = [
            (index, f)
            for index, f in enumerate(meta.concrete_fields)
            if isinstance(f, models.JSONField)
        ]
        self.date_time_indexes = [
            index
            for index, f in enumerate(meta.concrete_fields)
            if f.get_internal_type() == "DateTimeField"
        ]
        selected = [
            f"(extract(epoch FROM {quote(str(f.column))}) * 1000000)::bigint"
            if index in self.date_time_indexes
            else quote(str(f.column))
            for index, f in enumerate(meta.concrete_fields)
        ]
        # extract() is exact (numeric) from PostgreSQL 14, the oldest Django 5.2 supports.
        self.epoch_select_sql = (
            f"SELECT {', '.join(selected)} "
            f"FROM {self.name} WHERE account = %s AND tensorpix_id = ANY(%s::bigint[])"
        )
        self.select_sql = (
            f"SELECT {', '.join(quote(str(f.column)) for f in meta.concrete_fields)} "
            f"FROM {self.name} WHERE account = %s AND tensorpix_id = ANY(%s::bigint[])"
        )
        self.update_columns = columns([meta.get_field(name) for name in update_fields], connection)
        self.pk_column = columns([meta.pk], connection)
        # What moves when TensorPix only re-signed its presigned URLs.
        spec = SPECS.get(model)
        moved = {f.name for f in spec.fields if f.url} if spec else set()
        moved.update(BOOKKEEPING_FIELDS)
        self.resigned_columns = [c for c in self.update_columns if c[1] in moved]
        insert_list = ", ".join(quote(column) for column, _, _ in self.insert_columns)
        self.insert_sql = (
            f"INSERT INTO {self.name} ({insert_list}) {rows_select(self.insert_columns, quote)}"
        )
        assignments = ", ".join(
            f"{quote(column)} = EXCLUDED.{quote(column)}" for column, _, _ in self.update_columns
        )
        self.upsert_sql = (
            f"{self.insert_sql} ON CONFLICT (account, tensorpix_id) DO UPDATE SET {assignments}"
            " RETURNING id, tensorpix_id"
        )

    def upsert(self, cursor: Any, instances: list[Any], *, using: str) -> None:
        cursor.execute(self.upsert_sql, [rows_json(instances, self.insert_columns)])
        pks = {tensorpix_id: pk for pk, tensorpix_id in cursor.fetchall()}
        for instance in instances:
            instance.pk = pks[instance.tensorpix_id]
            instance._state.adding = False
            instance._state.db = using

    def update(self, cursor: Any, instances: list[Any], columns: Columns) -> None:
        quote = self.quote
        assignments = ", ".join(f"{quote(column)} = r.{quote(column)}" for column, _, _ in columns)
        with_pk = [*self.pk_column, *columns]
        cursor.execute(
            f"UPDATE {self.name} AS t SET {assignments} "
            f"FROM ({rows_select(with_pk, quote)}) AS r WHERE t.id = r.id",
            [rows_json(instances, with_pk)],
        )


def columns(fields: Iterable[Any], connection: Any) -> Columns:
    """(column, attribute, type without modifier) of each concrete field."""
    return [
        (str(field.column), str(field.attname), _TYPE_MODIFIER.sub("", field.db_type(connection)))
        for field in fields
    ]


_TYPE_MODIFIER = re.compile(r"\(.*?\)")


def rows_select(columns: Columns, quote: Callable[[str], str]) -> str:
    """``SELECT`` of the rows :func:`rows_json` sends (one parameter), named as the columns.

    Each value is cast from its JSON text by its type's input function, the conversion a
    literal gets; a JSON column's value is taken as ``jsonb`` (JSON ``null``: SQL NULL, as
    Django stores ``None``).
    """
    values = ", ".join(
        f"NULLIF(r.v -> {index}, 'null') AS {quote(column)}"
        if kind == "jsonb"
        else f"(r.v ->> {index})::{kind} AS {quote(column)}"
        for index, (column, _, kind) in enumerate(columns)
    )
    return f"SELECT {values} FROM jsonb_array_elements(%s::jsonb) AS r(v)"


def rows_json(instances: list[Any], columns: Columns) -> str:
    """The rows as one JSON array of arrays, values in the order of ``columns``.

    Arrays rather than objects keyed by column: no dict to build per row, no key to
    encode per value (about a third of the encoding's time on a page of jobs).
    """
    attnames = tuple(attname for _, attname, _ in columns)
    # Read from the instances' __dict__, at C speed and past the descriptors (a file
    # field's would wrap each value in a new FieldFile); a deferred field is not there.
    stored = _getter(attnames, operator.itemgetter)
    try:
        rows = [stored(vars(instance)) for instance in instances]
    except KeyError:
        values = _getter(attnames, operator.attrgetter)
        rows = [values(instance) for instance in instances]
    return _ENCODER.encode(rows)


@functools.cache
def _getter(attnames: tuple[str, ...], getter: Any) -> Callable[[Any], tuple[Any, ...]]:
    """The values as one tuple, read at C speed (``getter`` of two or more names)."""
    if len(attnames) == 1:
        one = getter(attnames[0])
        return lambda instance: (one(instance),)
    return cast(Callable[[Any], tuple[Any, ...]], getter(*attnames))


def _json_value(value: Any) -> Any:
    """Python values JSON has no type for, as the text their column's input reads back."""
    if type(value) is datetime:  # most of them: checked first, exactly
        return value.isoformat()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or ""
    raise TypeError(f"cannot write a {type(value).__name__} through the PostgreSQL sync path")


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_value)


def ensure_statistics(model: type[models.Model], written: int, *, using: str) -> None:
    """Analyse the model's tables once they hold enough rows, if PostgreSQL never has."""
    tables = [model._meta.db_table]
    for field in model._meta.local_many_to_many:
        tables.append(field.remote_field.through._meta.db_table)  # type: ignore[union-attr]
    key = (using, tables[0])
    with _statistics_lock:
        if key in _statistics_checked:
            return
        _rows_written[key] = total = _rows_written.get(key, 0) + written
        if total < ANALYZE_AFTER_ROWS:
            return
        _statistics_checked.add(key)
    connection = connections[using]
    statements = " ".join(
        f"IF (SELECT reltuples < 0 FROM pg_class WHERE oid = '{name}'::regclass) "
        f"THEN ANALYZE {name}; END IF;"
        for name in map(connection.ops.quote_name, tables)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"DO $$ BEGIN {statements} END $$")
