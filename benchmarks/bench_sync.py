"""Benchmark of the bulk sync on PostgreSQL (a script, not a test).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_sync.py

Creates (and drops) a ``test_<name>`` database, then prints:

1. 10,000 jobs, pages of 100, payloads pre-fetched from the emulator's state: the time of
   ``sync_jobs`` versus a naive per-object ``update_or_create`` loop (goal: sync at least
   10x faster) and versus the same rows written with hand-written ``INSERT ... ON
   CONFLICT`` statements and no checks (goal: sync at most 2x slower); first import and
   re-sync of the same payloads; queries per page.
2. Peak memory (tracemalloc) while syncing 100,000 jobs streamed from the emulator
   through the client, page by page, at several points: it should not grow with N.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from django_tensorpix.client import TensorPixClient  # noqa: E402
from django_tensorpix.conf import Account  # noqa: E402
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video  # noqa: E402
from django_tensorpix.sync import sync_jobs, sync_pages  # noqa: E402
from django_tensorpix.testing import TensorPixEmulator  # noqa: E402

PAGE_SIZE = 100
Pages = list[list[dict[str, Any]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs for the speed run (0: skip)")
    parser.add_argument(
        "--stream", type=int, default=100_000, help="jobs for the memory run (0: skip)"
    )
    parser.add_argument("--checkpoints", default="10000,50000,100000")
    options = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the figures are for PostgreSQL.")
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        if options.jobs:
            compare_writers(options.jobs)
        if options.stream:
            measure_memory(options.stream, [int(n) for n in options.checkpoints.split(",")])
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


# -- 1. speed ------------------------------------------------------------------------


def compare_writers(n: int) -> None:
    with TensorPixEmulator(api_key="bench") as emulator:
        ids = emulator.seed_jobs(n)
        # Read twice, as two syncs would: presigned URLs are re-signed on every read.
        payloads = [emulator.job_payload(job_id) for job_id in ids]
        reread = [emulator.job_payload(job_id) for job_id in ids]
    pages = [payloads[i : i + PAGE_SIZE] for i in range(0, n, PAGE_SIZE)]
    pages_again = [reread[i : i + PAGE_SIZE] for i in range(0, n, PAGE_SIZE)]
    print(f"{n:,} jobs in {len(pages)} pages of {PAGE_SIZE}, payloads pre-fetched")
    print("(re-sync: the same jobs read again, presigned URLs re-signed)\n")

    writers: dict[str, Callable[[Pages], None]] = {
        "sync_jobs (ours)": bulk_sync,
        "naive update_or_create": naive_update_or_create,
        "raw INSERT ... ON CONFLICT": raw_insert_on_conflict,
    }
    timings: dict[str, tuple[float, float]] = {}
    for name, write in writers.items():
        empty_tables()
        first = timed(write, pages)
        again = timed(write, pages_again)
        check_rows(n)
        timings[name] = (first, again)

    print(f"{'writer':<28} {'first import':>14} {'re-sync':>12}")
    for name, (first, again) in timings.items():
        print(f"{name:<28} {first:>12.2f} s {again:>10.2f} s")
    ours, naive, raw = (timings[name] for name in writers)
    print()
    for label, index in (("first import", 0), ("re-sync", 1)):
        print(
            f"{label:<13}: ours is {naive[index] / ours[index]:.1f}x faster than naive "
            f"(goal >= 10x), {ours[index] / raw[index]:.2f}x the time of raw SQL (goal <= 2x)"
        )
    print(f"ours: {n / ours[0]:,.0f} jobs/s first import, {n / ours[1]:,.0f} jobs/s re-sync")
    empty_tables()
    with CaptureQueriesContext(connection) as fresh:
        sync_jobs(pages[0])
    with CaptureQueriesContext(connection) as known:
        sync_jobs(pages_again[0])
    with CaptureQueriesContext(connection) as naive_queries:
        naive_update_or_create(pages[:1])
    print(
        f"queries per page of {PAGE_SIZE}: ours {len(fresh)} (new jobs) / {len(known)} "
        f"(known jobs), naive {len(naive_queries)}\n"
    )


def timed(write: Callable[[Pages], None], pages: Pages) -> float:
    gc.collect()
    start = time.perf_counter()
    write(pages)
    return time.perf_counter() - start


def empty_tables() -> None:
    with connection.cursor() as cursor:
        tables = [m._meta.db_table for m in (JobEvent, Job, Video, RestoredVideo, MLModel)]
        tables.append(Job.ml_models.through._meta.db_table)
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def check_rows(n: int) -> None:
    assert Job.objects.count() == n, "a writer lost jobs"
    assert Job.ml_models.through.objects.count() > 0, "a writer lost ML model links"


def bulk_sync(pages: Pages) -> None:
    for page in pages:
        sync_jobs(page)


def naive_update_or_create(pages: Pages) -> None:
    """What a first version would write: one object at a time, each in its transaction."""
    for page in pages:
        for payload in page:
            with transaction.atomic():
                naive_job(payload)


def naive_job(payload: dict[str, Any]) -> None:
    def upsert(model: Any, data: dict[str, Any] | None, **links: Any) -> Any:
        if data is None:
            return None
        columns = {k: v for k, v in data.items() if k != "id" and k != "ml_models"}
        row, _ = model.objects.update_or_create(
            account="default",
            tensorpix_id=data["id"],
            defaults={**columns, **links, "remote_data": data},
        )
        return row

    models = [upsert(MLModel, model) for model in payload["ml_models"]]
    job = upsert(
        Job,
        payload,
        input_video=upsert(Video, payload["input_video"]),
        output_video=upsert(RestoredVideo, payload["output_video"]),
    )
    job.ml_models.set(models)


def raw_insert_on_conflict(pages: Pages) -> None:
    """The same rows by hand: one multi-row INSERT ... ON CONFLICT per table and page."""
    for page in pages:
        with transaction.atomic(), connection.cursor() as cursor:
            models = {m["id"]: m for job in page for m in job["ml_models"]}
            videos = {job["input_video"]["id"]: job["input_video"] for job in page}
            outputs = {
                j["output_video"]["id"]: j["output_video"] for j in page if j["output_video"]
            }
            model_ids = upsert_raw(cursor, MLModel, models.values())
            video_ids = upsert_raw(cursor, Video, videos.values())
            output_ids = upsert_raw(cursor, RestoredVideo, outputs.values())
            rows = []
            for job in page:
                output = job["output_video"]
                rows.append(
                    {
                        **{k: v for k, v in job.items() if k != "ml_models"},
                        "input_video": video_ids[job["input_video"]["id"]],
                        "output_video": output_ids[output["id"]] if output else None,
                    }
                )
            job_ids = upsert_raw(cursor, Job, rows)
            table = Job.ml_models.through._meta.db_table
            cursor.execute(f"DELETE FROM {table} WHERE job_id = ANY(%s)", [list(job_ids.values())])
            links = [
                (job_ids[job["id"]], model_ids[model["id"]])
                for job in page
                for model in job["ml_models"]
            ]
            cursor.execute(
                f"INSERT INTO {table} (job_id, mlmodel_id) "
                f"SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                [[job for job, _ in links], [model for _, model in links]],
            )


def upsert_raw(cursor: Any, model: Any, payloads: Iterable[dict[str, Any]]) -> dict[int, int]:
    """INSERT ... ON CONFLICT (account, tensorpix_id) DO UPDATE ... RETURNING the ids."""
    payloads = list(payloads)
    if not payloads:
        return {}
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    bookkeeping = {"account", "tensorpix_id", "remote_data", "synced_at", "missing_remote"}
    sent = {key for payload in payloads for key in payload} | bookkeeping
    rows = []
    for payload in payloads:
        values = {k: v for k, v in payload.items() if k != "id"}
        values.update(
            account="default",
            tensorpix_id=payload["id"],
            remote_data=json.dumps(payload),
            synced_at="now",
            missing_remote=False,
        )
        if "preview_videos" in values:
            values["preview_videos"] = json.dumps(values["preview_videos"])
        rows.append(
            [
                values[f.name]
                if f.name in values
                else f.get_db_prep_save(f.get_default(), connection)
                for f in fields
            ]
        )
    columns = ", ".join(f.column for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    updates = ", ".join(f"{f.column} = EXCLUDED.{f.column}" for f in fields if f.name in sent)
    cursor.execute(
        f"INSERT INTO {model._meta.db_table} ({columns}) VALUES "
        + ", ".join([row_sql] * len(rows))
        + f" ON CONFLICT (account, tensorpix_id) DO UPDATE SET {updates}"
        " RETURNING id, tensorpix_id",
        [value for row in rows for value in row],
    )
    return {tensorpix_id: pk for pk, tensorpix_id in cursor.fetchall()}


# -- 2. memory -----------------------------------------------------------------------


# The emulator runs in this process: its allocations are not the sync's.
NOT_THE_EMULATOR = [
    tracemalloc.Filter(False, "*/django_tensorpix/testing/*"),
    tracemalloc.Filter(False, "*/socketserver.py"),
    tracemalloc.Filter(False, "*/http/server.py"),
]


def measure_memory(n: int, checkpoints: list[int]) -> None:
    empty_tables()
    with TensorPixEmulator(api_key="bench") as emulator:
        emulator.seed_jobs(n)
        client = TensorPixClient(Account("bench", emulator.api_key, emulator.base_url))
        print(f"{n:,} jobs streamed from the emulator through the client, pages of {PAGE_SIZE}")
        gc.collect()
        tracemalloc.start()
        baseline = held_by_sync()
        marks: list[tuple[int, float, float]] = []
        started = time.perf_counter()

        def on_page(result: Any) -> None:
            if len(marks) < len(checkpoints) and result.seen >= checkpoints[len(marks)]:
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                marks.append((result.seen, (held_by_sync() - baseline) / 2**20, peak / 2**20))

        with client:
            result = sync_pages("jobs", client.iter_job_pages(), on_page=on_page)
        elapsed = time.perf_counter() - started
        tracemalloc.stop()
    print(f"{'jobs synced':>12} {'held by sync (MiB)':>19} {'peak since last mark (MiB)':>27}")
    for seen, held, peak in marks:
        print(f"{seen:>12,} {held:>19.2f} {peak:>27.2f}")
    print(f"{result.seen:,} jobs in {elapsed:.1f} s (under tracemalloc, over HTTP)")
    if len(marks) >= 2:
        print(
            f"peak growth from {marks[0][0]:,} to {marks[-1][0]:,} jobs: "
            f"{marks[-1][2] / marks[0][2]:.2f}x"
        )


def held_by_sync() -> int:
    """Bytes currently allocated outside the emulator (the client, the sync, Django)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(NOT_THE_EMULATOR)
    return sum(stat.size for stat in snapshot.statistics("filename"))


if __name__ == "__main__":
    main()
