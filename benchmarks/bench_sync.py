"""Benchmark of syncing jobs end to end on PostgreSQL (a script, not a test).

    createdb -h 127.0.0.1 -U postgres bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python benchmarks/bench_sync.py --jobs 5000

Creates (and drops) a ``test_<name>`` database and starts the emulator in its own process
(``python -m django_tensorpix.testing``) on loopback with ``--jobs`` seeded jobs, each with
its input video, output video (when finished) and ML models. Every timing includes
fetching the pages of 100 through :class:`~django_tensorpix.client.TensorPixClient`:

* ``fetch only``: the listing read and thrown away (the floor);
* ``fetch + hand-written SQL``: the same pages written into the same tables with four
  statements a page (one multi-row ``INSERT ... ON CONFLICT DO UPDATE`` per table, the ML
  model links in the jobs' statement), no checks, no change detection, no events;
* ``tensorpix_sync jobs``: the management command, as a user runs it;
* ``naive update_or_create``: one object at a time, at ``--naive-jobs`` and scaled to N.

Each writer does a first import into empty tables, then a re-sync of the same jobs
(presigned URLs re-signed by the emulator). It prints times and the ratios against
``fetch + hand-written SQL``, queries per page, then (``--stream``) the peak memory of the
sync while a listing is streamed, at several checkpoints: it should not grow with N.
Run one N per invocation: a first import starts on new tables, without planner statistics.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402

from django_tensorpix.client import TensorPixClient  # noqa: E402
from django_tensorpix.conf import Account  # noqa: E402
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video  # noqa: E402
from django_tensorpix.sync import sync_jobs, sync_pages  # noqa: E402
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO  # noqa: E402

PAGE_SIZE = 100
API_KEY = "bench"
Payload = dict[str, Any]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5_000, help="jobs for the speed run (0: skip)")
    parser.add_argument(
        "--naive-jobs",
        type=int,
        default=1_000,
        help="jobs for the naive loop, scaled to --jobs (0: skip the naive loop)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of every writer, the median reported"
    )
    parser.add_argument(
        "--executemany",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the executemany variant of the hand-written SQL",
    )
    parser.add_argument("--stream", type=int, default=0, help="jobs for the memory run (0: skip)")
    parser.add_argument("--checkpoints", default="10000,50000,100000")
    options = parser.parse_args()
    # A killed run still stops its emulator and drops its database.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database: the figures are for PostgreSQL.")
    print(f"load average before: {load_average()}")
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        if options.jobs:
            compare_writers(options.jobs, options.naive_jobs, options.rounds, options.executemany)
        if options.stream:
            measure_memory(options.stream, [int(n) for n in options.checkpoints.split(",")])
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"load average after: {load_average()}")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@contextmanager
def emulator_process(jobs: int) -> Iterator[str]:
    """The emulator in a process of its own, as TensorPix would be; yields its base URL."""
    command = [sys.executable, "-m", "django_tensorpix.testing", "--port", "0"]
    command += ["--api-key", API_KEY, "--seed-jobs", str(jobs)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 (our own)
    CPU_PIDS.add(process.pid)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            raise RuntimeError(f"the emulator did not start: {line!r}")
        yield match.group(1)
    finally:
        CPU_PIDS.discard(process.pid)
        process.terminate()
        process.wait(timeout=30)


def client_for(base_url: str) -> TensorPixClient:
    return TensorPixClient(Account("default", API_KEY, base_url))


def job_pages(base_url: str) -> Iterator[list[Payload]]:
    with client_for(base_url) as client:
        for page in client.iter_job_pages():
            yield list(page)


# -- 1. speed ------------------------------------------------------------------------


def compare_writers(n: int, naive_n: int, rounds: int, executemany: bool) -> None:
    with emulator_process(n) as base_url:
        print(
            f"{n:,} jobs from the emulator at {base_url}, pages of {PAGE_SIZE}, through the client"
        )
        print("(re-sync: the same jobs read again, presigned URLs re-signed)\n")
        writers: dict[str, Callable[[], None]] = {
            "fetch only": lambda: fetch_only(base_url),
            "fetch + SQL, multi-row": lambda: hand_written_sql(base_url, multi_row=True),
            "fetch + SQL, executemany": lambda: hand_written_sql(base_url, multi_row=False),
            "tensorpix_sync jobs": lambda: tensorpix_sync(base_url),
        }
        if not executemany:
            del writers["fetch + SQL, executemany"]
        # Per writer, per round: (first import, re-sync) x (wall, CPU) seconds.
        runs: dict[str, list[list[list[float]]]] = {name: [] for name in writers}
        # Rounds interleave the writers; the median of each figure is reported (the
        # machine is shared: a best-of would reward whichever writer got a quiet moment).
        for _ in range(rounds):
            for name, write in writers.items():
                empty_tables()
                runs[name].append([timed(write), timed(write)])
                if name != "fetch only":
                    check_rows(n)
        timings = {
            name: [
                [statistics.median(run[sync][kind] for run in rounds_run) for kind in (0, 1)]
                for sync in (0, 1)
            ]
            for name, rounds_run in runs.items()
        }
        print(f"per-page read of jobs after tensorpix_sync's import: {read_plan()}")
        naive_name = ""
        if naive_n:
            with emulator_process(naive_n) as naive_url:
                empty_tables()
                naive = [timed(lambda: naive_loop(naive_url)) for _ in range(2)]
                check_rows(naive_n)
            naive_name = f"naive (x{n / naive_n:g} of {naive_n:,})"
            timings[naive_name] = [[value * n / naive_n for value in run] for run in naive]
        report(n, timings, naive_name)
        count_queries(base_url)


def report(n: int, timings: dict[str, list[list[float]]], naive_name: str) -> None:
    print(f"{'':<28} {'first import (wall / CPU)':>27} {'re-sync (wall / CPU)':>24}")
    for name, ((wall1, cpu1), (wall2, cpu2)) in timings.items():
        print(f"{name:<28} {wall1:>12.2f} s / {cpu1:>7.2f} s {wall2:>9.2f} s / {cpu2:>7.2f} s")
    print("(CPU: this process, its PostgreSQL backend and the emulator; steadier under load)\n")
    ours = timings["tensorpix_sync jobs"]
    hand = [name for name in timings if name.startswith("fetch + SQL")]
    for label, index in (("first import", 0), ("re-sync", 1)):
        for kind, column in (("wall", 0), ("CPU", 1)):
            # The faster hand-written variant is the reference.
            baseline = min(timings[name][index][column] for name in hand)
            line = (
                f"{label:<13} {kind:<4}: tensorpix_sync is "
                f"{ours[index][column] / baseline:.2f}x fetch + hand-written SQL (goal <= 1.3x)"
            )
            if naive_name:
                naive = timings[naive_name][index][column]
                line += f", {naive / ours[index][column]:.1f}x faster than naive (goal >= 15x)"
            print(line)
    print(
        f"tensorpix_sync: {n / ours[0][0]:,.0f} jobs/s first import, "
        f"{n / ours[1][0]:,.0f} re-sync (wall)"
    )


def read_plan() -> str:
    """How PostgreSQL reads a page's existing jobs now (an index scan, not the account)."""
    ids = list(Job.objects.order_by("?").values_list("tensorpix_id", flat=True)[:PAGE_SIZE])
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN SELECT * FROM django_tensorpix_job"
            " WHERE account = %s AND tensorpix_id = ANY(%s::bigint[])",
            ["default", ids],
        )
        return str(cursor.fetchone()[0])


def timed(write: Callable[[], None]) -> list[float]:
    """Wall and CPU seconds of ``write``: CPU of this process, its backend and the emulator."""
    gc.collect()
    start, cpu = time.perf_counter(), cpu_seconds()
    write()
    return [time.perf_counter() - start, cpu_seconds() - cpu]


# Processes whose CPU time counts besides this one's: the emulator, PostgreSQL's backend.
CPU_PIDS: set[int] = set()


def cpu_seconds() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        CPU_PIDS.add(cursor.fetchone()[0])
    total = time.process_time()
    for pid in list(CPU_PIDS):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            CPU_PIDS.discard(pid)
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def empty_tables() -> None:
    with connection.cursor() as cursor:
        tables = [m._meta.db_table for m in (JobEvent, Job, Video, RestoredVideo, MLModel)]
        tables.append(Job.ml_models.through._meta.db_table)
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def check_rows(n: int) -> None:
    assert Job.objects.count() == n, "a writer lost jobs"
    links = Job.ml_models.through.objects.count()
    assert links >= n, f"a writer lost ML model links ({links} for {n} jobs)"


def count_queries(base_url: str) -> None:
    empty_tables()
    pages = job_pages(base_url)
    first, second = next(pages), next(pages)
    pages.close()
    with CaptureQueriesContext(connection) as fresh:
        sync_jobs(first)
    with CaptureQueriesContext(connection) as known:
        sync_jobs(first)
    with CaptureQueriesContext(connection) as mixed:
        sync_jobs(first[50:] + second[:50])
    print(
        f"queries per page of {PAGE_SIZE}: {len(fresh)} (new jobs), {len(known)} (known jobs), "
        f"{len(mixed)} (half new)\n"
    )


def fetch_only(base_url: str) -> None:
    for _ in job_pages(base_url):
        pass


def tensorpix_sync(base_url: str) -> None:
    accounts = {"API_KEY": API_KEY, "BASE_URL": base_url, "PAGE_SIZE": PAGE_SIZE}
    with override_settings(TENSORPIX=accounts):
        call_command("tensorpix_sync", "jobs", stdout=io.StringIO())


# -- the naive loop ------------------------------------------------------------------


def naive_loop(base_url: str) -> None:
    """What a first version would write: one object at a time, each job in its transaction."""
    for page in job_pages(base_url):
        for payload in page:
            with transaction.atomic():
                naive_job(payload)


def naive_job(payload: Payload) -> None:
    def upsert(model: Any, data: Payload | None, **links: Any) -> Any:
        if data is None:
            return None
        columns = {k: v for k, v in data.items() if k != "id" and k != "ml_models"}
        row, _ = model.objects.update_or_create(
            account="default",
            tensorpix_id=data["id"],
            defaults={**columns, **links, "remote_data": data},
        )
        return row

    ml_models = [upsert(MLModel, model) for model in payload["ml_models"]]
    job = upsert(
        Job,
        payload,
        input_video=upsert(Video, payload["input_video"]),
        output_video=upsert(RestoredVideo, payload["output_video"]),
    )
    job.ml_models.set(ml_models)


# -- the hand-written SQL baseline ---------------------------------------------------


def hand_written_sql(base_url: str, *, multi_row: bool) -> None:
    """Four upserts a page on psycopg's own cursor; no checks, no diff, no events.

    ``multi_row``: one ``INSERT ... VALUES (...), (...)`` per table with ``$n`` parameters
    (psycopg's ``RawCursor``: no query parsing in Python, like psycopg2's ``execute_values``)
    and the ML model links in the jobs' statement; otherwise one pipelined ``executemany``
    per table and one more statement for the links.
    """
    raw = connection.cursor().cursor.connection  # the psycopg connection under Django's
    tables = {model: HandWritten(model, spec, multi_row) for model, spec in SPECS.items()}
    for page in job_pages(base_url):
        now = datetime.now(UTC)
        cursor_class = psycopg.RawCursor if multi_row else psycopg.Cursor
        with transaction.atomic(), cursor_class(raw) as cursor:
            ml_models = {m["id"]: m for job in page for m in job["ml_models"]}
            inputs = {job["input_video"]["id"]: job["input_video"] for job in page}
            outputs = {
                j["output_video"]["id"]: j["output_video"] for j in page if j["output_video"]
            }
            model_pks = tables[MLModel].upsert(cursor, ml_models.values(), now)
            input_pks = tables[Video].upsert(cursor, inputs.values(), now)
            output_pks = tables[RestoredVideo].upsert(cursor, outputs.values(), now)
            for job in page:
                output = job["output_video"]
                job["input_video_id"] = input_pks[job["input_video"]["id"]]
                job["output_video_id"] = output_pks[output["id"]] if output else None
            links = [(job["id"], model_pks[m["id"]]) for job in page for m in job["ml_models"]]
            tables[Job].upsert(cursor, page, now, links=links)


SPECS = {MLModel: ML_MODEL, Video: VIDEO, RestoredVideo: RESTORED_VIDEO, Job: JOB}


class HandWritten:
    """A multi-row ``INSERT ... ON CONFLICT (account, tensorpix_id) DO UPDATE`` for one table."""

    def __init__(self, model: type[models.Model], spec: Any, multi_row: bool) -> None:
        self.model = model
        self.multi_row = multi_row
        # What the sync writes for a row it has seen: its mirrored columns, remote_data and
        # the bookkeeping (a row seen again is no longer missing).
        mirrored = [
            *spec.column_names(),
            *("remote_data", "synced_at", "missing_remote", "missing_since"),
        ]
        if model is Job:
            mirrored += ["input_video_id", "output_video_id"]
        self.mirrored = mirrored
        concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
        # Local columns get their default on insert and are never updated.
        self.local = {
            f.column: f.get_db_prep_save(f.get_default(), connection)
            for f in concrete
            if f.column not in mirrored and f.name not in ("account", "tensorpix_id")
        }
        if model is Job:
            self.local["submission_state"] = "submitted"
        self.columns = ["account", "tensorpix_id", *mirrored, *self.local]
        update = ", ".join(f"{c} = EXCLUDED.{c}" for c in mirrored)
        self.sql = (
            f"INSERT INTO {model._meta.db_table} ({', '.join(self.columns)}) "
            f"VALUES ({', '.join(['%s'] * len(self.columns))}) "
            f"ON CONFLICT (account, tensorpix_id) DO UPDATE SET {update} "
            "RETURNING id, tensorpix_id"
        )
        self.json_columns = {"preview_videos"}

    def values(self, payload: Payload, now: datetime) -> list[Any]:
        kept = payload
        if self.model is Job:
            kept = {k: v for k, v in payload.items() if not k.endswith("_video_id")}
            kept["ml_models"] = [{"id": m["id"]} for m in payload["ml_models"]]
            for name in ("input_video", "output_video"):
                if payload[name] is not None:
                    kept[name] = {"id": payload[name]["id"]}
        row: list[Any] = ["default", payload["id"]]
        for column in self.mirrored:
            if column == "remote_data":
                row.append(Jsonb(kept))
            elif column == "synced_at":
                row.append(now)
            elif column == "missing_remote":
                row.append(False)
            elif column == "missing_since":
                row.append(None)
            elif column in self.json_columns and payload.get(column) is not None:
                row.append(Jsonb(payload[column]))
            else:
                row.append(payload.get(column))
        row.extend(self.local.values())
        return row

    def upsert(
        self,
        cursor: Any,
        payloads: Any,
        now: datetime,
        links: list[tuple[int, int]] | None = None,
    ) -> dict[int, int]:
        """One ``executemany`` (pipelined by psycopg, one round trip); links in one more."""
        rows = [self.values(payload, now) for payload in payloads]
        if not rows:
            return {}
        if self.multi_row:
            return self.upsert_multi_row(cursor, rows, links)
        cursor.executemany(self.sql, rows, returning=True)
        pks = {}
        while True:
            pk, tensorpix_id = cursor.fetchone()
            pks[tensorpix_id] = pk
            if not cursor.nextset():
                break
        if links:
            through = Job.ml_models.through._meta.db_table
            cursor.execute(
                f"INSERT INTO {through} (job_id, mlmodel_id) "
                "SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                [[pks[job] for job, _ in links], [pk for _, pk in links]],
            )
        return pks

    def upsert_multi_row(
        self, cursor: Any, rows: list[list[Any]], links: list[tuple[int, int]] | None
    ) -> dict[int, int]:
        width = len(self.columns)
        values = ", ".join(
            "(" + ", ".join(f"${row * width + i + 1}" for i in range(width)) + ")"
            for row in range(len(rows))
        )
        sql = self.sql.replace(f"VALUES ({', '.join(['%s'] * width)})", f"VALUES {values}")
        params = [value for row in rows for value in row]
        if links is None:
            cursor.execute(sql, params)
            return {tensorpix_id: pk for pk, tensorpix_id in cursor.fetchall()}
        through = Job.ml_models.through._meta.db_table
        n = len(params)
        cursor.execute(
            f"WITH job AS ({sql}) INSERT INTO {through} (job_id, mlmodel_id) "
            f"SELECT job.id, link.mlmodel_id FROM job JOIN unnest(${n + 1}::bigint[], "
            f"${n + 2}::bigint[]) AS link(tensorpix_id, mlmodel_id) USING (tensorpix_id) "
            "ON CONFLICT DO NOTHING",
            [*params, [job for job, _ in links], [pk for _, pk in links]],
        )
        return {}


# -- 2. memory -----------------------------------------------------------------------


def measure_memory(n: int, checkpoints: list[int]) -> None:
    empty_tables()
    with emulator_process(n) as base_url, client_for(base_url) as client:
        print(f"{n:,} jobs streamed from the emulator through the client, pages of {PAGE_SIZE}")
        gc.collect()
        tracemalloc.start()
        marks: list[tuple[int, float, float]] = []
        started = time.perf_counter()

        def on_page(result: Any) -> None:
            if len(marks) < len(checkpoints) and result.seen >= checkpoints[len(marks)]:
                current, peak = tracemalloc.get_traced_memory()
                tracemalloc.reset_peak()
                marks.append((result.seen, current / 2**20, peak / 2**20))

        result = sync_pages("jobs", client.iter_job_pages(), on_page=on_page)
        elapsed = time.perf_counter() - started
        tracemalloc.stop()
    print(f"{'jobs synced':>12} {'held (MiB)':>11} {'peak since last mark (MiB)':>27}")
    for seen, held, peak in marks:
        print(f"{seen:>12,} {held:>11.2f} {peak:>27.2f}")
    print(f"{result.seen:,} jobs in {elapsed:.1f} s (under tracemalloc, over HTTP)")
    if len(marks) >= 2:
        print(
            f"peak growth from {marks[0][0]:,} to {marks[-1][0]:,} jobs: "
            f"{marks[-1][2] / marks[0][2]:.2f}x"
        )


if __name__ == "__main__":
    main()
