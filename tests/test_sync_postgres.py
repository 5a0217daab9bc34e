"""PostgreSQL's fast path for the sync's writes: what it sends, and what it leaves alone.

The behaviour both paths share (rows, changes, signals, events) is pinned by test_sync.py
and test_sync_roundtrip.py, which run on both; here, what only the fast path promises.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from django_tensorpix.models import Job, RestoredVideo, Video
from django_tensorpix.sync import jobs, postgres, rows, sync_job, sync_jobs
from tests.strategies import job_payload, page_of_jobs, restored_video_payload, video_payload

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's"),
]


def statements(page: list[dict[str, Any]]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        sync_jobs(page)
    return [query["sql"] for query in captured.captured_queries]


def test_the_fast_path_runs_through_djangos_cursor_and_the_setting_turns_it_off(
    settings: Any,
) -> None:
    fast = statements(page_of_jobs(3))
    settings.TENSORPIX = {**settings.TENSORPIX, "SYNC_FAST_PATH": False}
    generic = statements(page_of_jobs(3, first_id=5000))

    # 4 tables and the events from one JSON document each, the ML model links as two arrays.
    assert sum("jsonb_array_elements(" in sql for sql in fast) == 5
    assert sum("unnest(" in sql and "django_tensorpix_job_ml_models" in sql for sql in fast) == 1
    assert not any("jsonb_array_elements(" in sql for sql in generic)
    assert Job.objects.count() == 6


def test_resigned_urls_rewrite_only_the_url_and_bookkeeping_columns() -> None:
    sync_job(job_payload())
    resigned = job_payload(
        output_video=restored_video_payload(signature="bbb"),
        input_video=video_payload(file="https://storage.example.com/videos/31/file?X-Signature=b"),
    )

    sql = statements([resigned])

    assert not any(query.lstrip().startswith("INSERT") for query in sql)
    (video_update,) = [q for q in sql if q.startswith('UPDATE "django_tensorpix_video" AS t')]
    assigned = set(video_update.split(" SET ")[1].split(" FROM ")[0].split(", "))
    assert assigned == {
        f'"{column}" = r."{column}"'
        for column in (
            *("file", "thumbnail"),
            *("remote_data", "synced_at", "missing_remote", "missing_since"),
        )
    }
    assert (Video.objects.get().file or "").endswith("X-Signature=b")
    assert (RestoredVideo.objects.get().file or "").endswith("X-Signature=bbb")


def test_unchanged_jobs_only_move_synced_at() -> None:
    page = page_of_jobs(5)
    sync_jobs(page)

    sql = statements(page)

    job_writes = [q for q in sql if '"django_tensorpix_job"' in q and not q.startswith("SELECT")]
    assert len(job_writes) == 1
    assert job_writes[0].startswith('UPDATE "django_tensorpix_job" SET synced_at = ')
    assert "missing_remote = false, missing_since = NULL WHERE id = ANY(" in job_writes[0]


def test_a_big_first_import_analyses_tables_postgresql_never_analysed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "ANALYZE_AFTER_ROWS", 20)
    monkeypatch.setattr(postgres, "_rows_written", {})
    monkeypatch.setattr(postgres, "_statistics_checked", set())
    with connection.cursor() as cursor:
        # As on a new table: an earlier test's ANALYZE outlives its rolled-back transaction.
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1 WHERE relname IN "
            "('django_tensorpix_job', 'django_tensorpix_job_ml_models')"
        )

    first = statements(page_of_jobs(10))
    second = statements(page_of_jobs(10, first_id=3000))
    third = statements(page_of_jobs(10, first_id=6000))

    analyses = [[q for q in sql if "ANALYZE" in q] for sql in (first, second, third)]
    # Once per table, when it reaches 20 rows: jobs (with their links), videos, outputs.
    assert [len(found) for found in analyses] == [0, 3, 0]
    assert sum('"django_tensorpix_job_ml_models"' in sql for sql in analyses[1]) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'django_tensorpix_job'")
        (reltuples,) = cursor.fetchone()
    assert reltuples >= 20


def test_a_row_another_sync_created_meanwhile_is_updated_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = job_payload()
    sync_job(payload)
    # The page's read found nothing, but the rows exist by the time of the insert.
    for module in (jobs, rows):
        monkeypatch.setattr(module, "read_existing", lambda *args, **kwargs: {})

    sync_jobs([{**payload, "description": "fresh"}])

    assert Job.objects.get().description == "fresh"
    assert (Video.objects.count(), RestoredVideo.objects.count()) == (1, 1)


def test_links_are_inserted_as_arrays_and_an_existing_link_is_kept() -> None:
    sync_job(job_payload())
    job = Job.objects.get()
    (model,) = job.ml_models.all()[:1]
    links = Job.ml_models.through.objects

    rows.insert_links(
        Job.ml_models.through, ("job_id", "mlmodel_id"), [(job.pk, model.pk)], using="default"
    )

    assert links.filter(job=job, mlmodel=model).count() == 1


@pytest.mark.parametrize(
    "started",
    ["0001-01-01T00:00:00.000001Z", "2025-07-01T10:00:00.999999+02:00", "9999-12-31T23:59:59Z"],
)
@pytest.mark.parametrize("epoch", [True, False])
def test_rows_read_back_as_the_orm_reads_them(
    started: str, epoch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Date-times are read as microseconds since 1970 when the connection is in UTC."""
    if not epoch:
        monkeypatch.setattr(connection, "timezone", dt.timezone(dt.timedelta(hours=1)))
    sync_job(job_payload(started=started, finished=None, status=1, output_video=None))
    orm = Job.objects.get()
    assert orm.tensorpix_id is not None
    assert orm.started is not None

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        fast = postgres.read_existing(
            Job, "default", [orm.tensorpix_id], using="default", lock=False
        )

    assert ("extract(epoch" in captured.captured_queries[0]["sql"]) is epoch
    row = fast[orm.tensorpix_id]
    for field in Job._meta.concrete_fields:
        assert getattr(row, field.attname) == getattr(orm, field.attname), field.name
    assert row.started.tzinfo is orm.started.tzinfo is connection.timezone
    assert (row._state.adding, row._state.db) == (False, "default")
