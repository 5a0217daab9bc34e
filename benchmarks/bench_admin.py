"""Benchmark of the job changelist over 100,000 jobs on PostgreSQL (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_admin.py

Creates (and drops) ``test_<name>``, bulk-inserts jobs with ``INSERT ... SELECT FROM
generate_series`` (each row built from one ``Job`` template, so every column the model has
is filled; 100,000 jobs take seconds), then renders admin pages through Django's test
client as a superuser and prints the median time and query count of each:

* the baseline: the same pages over 1,000 jobs, measured first in the same run;
* the same pages over 100,000 jobs, and the ratio to the baseline;
* ``show_full_result_count`` on versus off for a filtered page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_tensorpix.models import Job, JobEvent, MLModel, Video  # noqa: E402

VIDEOS = 5_000
RUNS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the figures are for PostgreSQL.")
    settings.ALLOWED_HOSTS = ["testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(options.baseline, options.jobs)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(baseline: int, total: int) -> None:
    user = User.objects.create_superuser("bench", "bench@example.com", "pw")
    client = Client()
    client.force_login(user)
    models = seed_catalogue()
    seed_videos(user)
    started = time.perf_counter()
    insert_jobs(0, baseline, user, models)
    print(f"inserted {baseline:,} jobs in {time.perf_counter() - started:.1f} s")
    small = measure(client, models)
    started = time.perf_counter()
    insert_jobs(baseline, total - baseline, user, models)
    print(f"inserted {total - baseline:,} more jobs in {time.perf_counter() - started:.1f} s\n")
    large = measure(client, models)

    print(f"changelist render time, median of {RUNS}: whole request / of which SQL (queries)")
    print(f"{'page':<34} {f'{baseline:,} jobs':>22} {f'{total:,} jobs':>24} {'ratio':>7}")
    for name, (seconds, queries, sql) in large.items():
        base, base_queries, base_sql = small[name]
        print(
            f"{name:<34} {base * 1000:>6.0f} / {base_sql * 1000:>4.0f} ms ({base_queries:>2}) "
            f"{seconds * 1000:>8.0f} / {sql * 1000:>4.0f} ms ({queries:>2}) {seconds / base:>6.1f}x"
        )

    job_admin = admin.site._registry[Job]
    job_admin.show_full_result_count = True  # type: ignore[misc]
    try:
        full = timed_page(client, "?status=2")
    finally:
        job_admin.show_full_result_count = False  # type: ignore[misc]
    print(
        f"\nfiltered page (status=Finished) with show_full_result_count=True: "
        f"{full[0] * 1000:.0f} ms, SQL {full[2] * 1000:.0f} ms ({full[1]} queries); off (the "
        f"default): SQL {large['filter status=Finished'][2] * 1000:.0f} ms"
    )


def measure(client: Client, models: list[MLModel]) -> dict[str, tuple[float, int, float]]:
    year = timezone.now().year
    pages = {
        "list, first page": "",
        "filter status=Finished": "?status=2",
        "filter status=Stalled": "?status=stalled",
        "filter has an error": "?has_error=yes",
        f"filter ML model {models[0].name}": f"?ml_models__id__exact={models[0].pk}",
        f"date_hierarchy started__year={year}": f"?started__year={year}",
        "search a TensorPix id": "?q=777",
        "search a video name": "?q=archive-4242",
        "page 5": "?p=5",
    }
    return {name: timed_page(client, query) for name, query in pages.items()}


def timed_page(client: Client, query: str) -> tuple[float, int, float]:
    """Median render time, queries per page, and median time spent in SQL."""
    url = reverse("admin:django_tensorpix_job_changelist") + query
    client.get(url)  # warm: templates, content types
    times, sql_times = [], []
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        sql_times.append(sum(float(query["time"]) for query in queries.captured_queries))
    return statistics.median(times), len(queries), statistics.median(sql_times)


def seed_catalogue() -> list[MLModel]:
    common = {"cost_weight": 1.0, "fps_boost_factor": 1, "priority": 1, "max_resolution": 8_294_400}
    names = [("Upscale x2", 1, 2), ("Upscale x4", 1, 4), ("Denoise", 3, 1), ("Deinterlace", 9, 1)]
    return [
        MLModel.objects.create(
            tensorpix_id=index, name=name, task=task, upscale_factor=factor, **common
        )
        for index, (name, task, factor) in enumerate(names, 1)
    ]


def seed_videos(user: User) -> None:
    template = Video(user=user, name="x", width=1280, height=720, n_frames=900, framerate=30.0)
    template.thumbnail = "https://storage.example/thumbs/x.jpg?X-Amz-Signature=abc"
    insert_select(
        template,
        VIDEOS,
        {
            "tensorpix_id": "g",
            "name": "'archive-' || g || '.mp4'",
            "created_at": "now() - g * interval '1 minute'",
        },
    )


def insert_jobs(offset: int, n: int, user: User, models: list[MLModel]) -> None:
    """``n`` jobs: mostly finished, some failed, canceled, processing, queued, not submitted."""
    first_video = Video.objects.order_by("pk").values_list("pk", flat=True)[0]
    status = (
        "CASE WHEN g % 50 = 0 THEN NULL WHEN g % 50 = 1 THEN 0 WHEN g % 50 < 5 THEN 1 "
        "WHEN g % 50 < 9 THEN -1 WHEN g % 50 < 12 THEN -2 ELSE 2 END"
    )
    template = Job(user=user, submission_state="submitted")
    insert_select(
        template,
        n,
        {
            "tensorpix_id": f"CASE WHEN g % 50 = 0 THEN NULL ELSE g + {offset} END",
            "status": status,
            "submission_state": "CASE WHEN g % 50 = 0 THEN 'pending' ELSE 'submitted' END",
            "processing_progress": "CASE WHEN g % 50 BETWEEN 2 AND 4 THEN (g % 100) / 100.0 "
            "WHEN g % 50 >= 12 THEN 1.0 END",
            "eta_s": "CASE WHEN g % 50 BETWEEN 2 AND 4 THEN g % 3600 END",
            "cost_usd": "(g % 400) / 100.0",
            "started": f"now() - (g + {offset}) * interval '30 seconds'",
            "finished": (
                f"CASE WHEN g % 50 >= 5 THEN now() - (g + {offset}) * interval '25 seconds' END"
            ),
            "local_created_at": f"now() - (g + {offset}) * interval '31 seconds'",
            "input_video_id": f"{first_video} + (g % {VIDEOS})",
            "last_sync_error": "CASE WHEN g % 500 = 7 THEN 'TensorPix answered 503' ELSE '' END",
            "description": f"'bench ' || (g + {offset})",
            "stalled_at": "CASE WHEN g % 1000 = 3 THEN now() END",
        },
    )
    new_jobs = f"SELECT id FROM {Job._meta.db_table} ORDER BY id DESC LIMIT {n}"
    through = Job.ml_models.through._meta
    model_ids = "ARRAY[" + ",".join(str(model.pk) for model in models) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {through.db_table} (job_id, mlmodel_id) "
            f"SELECT id, ({model_ids})[1 + id % {len(models)}] FROM ({new_jobs}) new_jobs"
        )
        cursor.execute(
            f"INSERT INTO {JobEvent._meta.db_table} "
            "(job_id, at, kind, old_value, new_value, message) "
            f"SELECT id, now(), 'stalled', '', '', 'bench' FROM ({new_jobs}) new_jobs "
            "WHERE id % 1000 = 3"
        )
        cursor.execute("ANALYZE")


def insert_select(template: Any, n: int, expressions: dict[str, str]) -> None:
    """Insert ``n`` rows like ``template``, with the columns in ``expressions`` computed in SQL
    from ``g`` (1..n) and every other column taken from the template as Django would save it."""
    model = type(template)
    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in expressions or field.name in expressions:
            expression = expressions.get(field.attname) or expressions[field.name]
            values.append(expression.replace("%", "%%"))
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(template, True), connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(values)} FROM generate_series(1, {n}) g",
            params,
        )


if __name__ == "__main__":
    main()
