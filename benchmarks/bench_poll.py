"""Benchmark of the adaptive poller (a script, not a test).

    .venv/bin/python benchmarks/bench_poll.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python benchmarks/bench_poll.py

Creates (and drops) a ``test_<name>`` database, then prints:

1. Jobs that process for 10 emulated minutes with TensorPix's noisy ``eta_s``, one at a
   time: API requests per job and the mean lag between the job ending on the emulator
   and ``job_finished`` firing, for the poller (a sweep every ``SWEEP_INTERVAL`` s, as
   the ready-made beat entry runs it) against the official recipe's fixed 10-second
   loop (goal: at most 20 requests and 3 s mean lag; the recipe makes about 60 and lags
   5 s on average).
2. 1,000 active jobs of one account, all due: requests of one sweep through the jobs
   list against one GET per job (goal: at most 10 list requests), with wall times.

The app and the emulator share one virtual clock: the emulator's manual clock, which
``django.utils.timezone.now`` is made to read, moved forward sweep by sweep.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_tensorpix import polling, signals  # noqa: E402
from django_tensorpix.client import TensorPixClient  # noqa: E402
from django_tensorpix.conf import tensorpix_settings  # noqa: E402
from django_tensorpix.models import AccountPollState, Job  # noqa: E402
from django_tensorpix.schedules import SWEEP_INTERVAL  # noqa: E402
from django_tensorpix.sync import sync_jobs  # noqa: E402
from django_tensorpix.testing import IN_QUEUE, PROCESSING, TensorPixEmulator  # noqa: E402

DURATION = 600.0
RECIPE_INTERVAL = 10.0
RETRIEVE = "GET /api/jobs/{id}/"
LIST = "GET /api/jobs/"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20, help="10-minute jobs per poller")
    parser.add_argument("--active", type=int, default=1000, help="active jobs for part 2")
    options = parser.parse_args()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        with TensorPixEmulator(api_key="bench", seed=7) as emulator:
            settings.TENSORPIX = {
                **settings.TENSORPIX,
                "API_KEY": emulator.api_key,
                "BASE_URL": emulator.base_url,
                # A sweep gives back what it has not reached after half its lease (real
                # time): long enough here for 1,000 GETs in one sweep on a slow machine.
                "POLL_LEASE": 3600.0,
            }
            tensorpix_settings.reload()
            # One clock for both sides: the app reads the emulator's.
            timezone.now = lambda: datetime.fromtimestamp(emulator.now(), UTC)
            compare_pollers(emulator, options.jobs)
            compare_sweeps(emulator, options.active)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


# -- 1. one 10-minute job ----------------------------------------------------------------


def start_job(emulator: TensorPixEmulator, offset: float) -> int:
    """A job that starts processing ``offset`` s from now and processes for 10 minutes."""
    emulator.max_active_jobs = 1000
    (job_id,) = emulator.seed_jobs(1, status=IN_QUEUE)
    with emulator.state.lock:
        job = emulator.state.jobs[job_id]
        job.duration = DURATION
        job.eligible_at = emulator.now() + offset
    return job_id


def ended_at(emulator: TensorPixEmulator, job_id: int) -> float:
    with emulator.state.lock:
        ended = emulator.state.jobs[job_id].ended_at
    assert ended is not None
    return ended


def run_adaptive(emulator: TensorPixEmulator, offset: float) -> tuple[int, float]:
    """Requests and lag of the poller for one job, swept every SWEEP_INTERVAL s."""
    job_id = start_job(emulator, offset)
    with TensorPixClient.for_account() as client:
        sync_jobs([client.get_job(job_id)])  # as if just submitted
    finished_at: list[float] = []

    def on_finished(sender: Any, job: Job, **kwargs: Any) -> None:
        if job.tensorpix_id == job_id:
            finished_at.append(emulator.now())

    signals.job_finished.connect(on_finished, weak=False)
    emulator.clear_requests()
    try:
        while not finished_at:
            emulator.advance(SWEEP_INTERVAL)
            polling.poll_due_jobs()
    finally:
        signals.job_finished.disconnect(on_finished)
    requests = sum(1 for record in emulator.requests if record.route == RETRIEVE)
    return requests, finished_at[0] - ended_at(emulator, job_id)


def run_recipe(emulator: TensorPixEmulator, offset: float) -> tuple[int, float]:
    """The official recipe: GET the job, sleep 10 s, until its status is final."""
    job_id = start_job(emulator, offset)
    emulator.clear_requests()
    with TensorPixClient.for_account() as client:
        while client.get_job(job_id)["status"] in (IN_QUEUE, PROCESSING):
            emulator.advance(RECIPE_INTERVAL)
        seen_at = emulator.now()
    return len(emulator.requests), seen_at - ended_at(emulator, job_id)


def compare_pollers(emulator: TensorPixEmulator, n: int) -> None:
    # Offsets spread each job's end over the sweep grid and the recipe's 10 s loop.
    offsets = [(index * 7.31) % RECIPE_INTERVAL for index in range(n)]
    adaptive = [run_adaptive(emulator, offset) for offset in offsets]
    recipe = [run_recipe(emulator, offset) for offset in offsets]
    print(f"1. {n} jobs of {DURATION / 60:.0f} emulated minutes each, noisy eta_s, one at a time")
    for name, runs in (("adaptive poller", adaptive), ("recipe, fixed 10 s", recipe)):
        requests = [r for r, _ in runs]
        lags = [lag for _, lag in runs]
        print(
            f"   {name:<20} requests/job mean {statistics.mean(requests):5.1f} "
            f"(max {max(requests)}), lag mean {statistics.mean(lags):4.1f} s "
            f"(max {max(lags):4.1f} s)"
        )
    ratio = statistics.mean(r for r, _ in recipe) / statistics.mean(r for r, _ in adaptive)
    print(f"   the recipe sends {ratio:.1f}x the requests of the poller")


# -- 2. 1,000 active jobs ------------------------------------------------------------------


def compare_sweeps(emulator: TensorPixEmulator, n: int) -> None:
    emulator.seed_jobs(n, status=PROCESSING)
    with TensorPixClient.for_account() as client:
        for page in client.iter_job_pages():
            sync_jobs(page)
    active = Job.objects.active().count()
    print(
        f"2. {active} active jobs ({Job.objects.count()} rows) of one account, all due, one sweep"
    )
    results = {}
    for name, listed_count in (("through the list", None), ("one GET per job", 10**9)):
        Job.objects.update(next_poll_at=None)
        AccountPollState.objects.update_or_create(
            account="default", defaults={"listed_count": listed_count}
        )
        emulator.clear_requests()
        started = time.perf_counter()
        result = polling.poll_due_jobs(limit=n + 100)
        elapsed = time.perf_counter() - started
        routes = [record.route for record in emulator.requests]
        results[name] = len(routes)
        print(
            f"   {name:<17} {result.claimed} claimed: {routes.count(LIST)} list + "
            f"{routes.count(RETRIEVE)} GET requests, {elapsed:5.2f} s"
        )
    ratio = results["one GET per job"] / results["through the list"]
    print(f"   the list needs {ratio:.0f}x fewer requests")


if __name__ == "__main__":
    main()
