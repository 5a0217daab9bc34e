"""Real Celery worker processes (and beat) keeping jobs in sync with the emulator.

The workers are ``celery -A tests.polling_celery_app worker`` subprocesses on Redis database 9
with a queue of this run's own, using pytest's test database: PostgreSQL only (an
in-memory SQLite database cannot be shared with another process). Each signal a worker
sends is counted in Redis, so the test can check every transition went out once.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.models import Job
from django_tensorpix.sync import sync_jobs
from django_tensorpix.testing import IN_QUEUE, TensorPixEmulator
from tests.workers import (
    Workers,
    assert_each_transition_dispatched_once,
    assert_matches_emulator,
    wait_until_all_final,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "postgres" not in os.environ.get("DATABASE_URL", ""),
        reason="worker processes need a database they can share (PostgreSQL)",
    ),
]


@pytest.fixture
def fast_emulator() -> Iterator[TensorPixEmulator]:
    """An emulator whose clock runs 30 times faster than real time."""
    with TensorPixEmulator(speed=30.0, seed=9) as emulator:
        yield emulator


@pytest.fixture
def workers(fast_emulator: TensorPixEmulator, tmp_path: Path, settings: Any) -> Iterator[Workers]:
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "API_KEY": fast_emulator.api_key,
        "BASE_URL": fast_emulator.base_url,
    }
    tensorpix_settings.reload()
    pool = Workers(fast_emulator, tmp_path)
    yield pool
    pool.stop()


def add_jobs(emulator: TensorPixEmulator, n: int, durations: Callable[[int], float]) -> list[int]:
    """``n`` queued jobs that run ``durations(i)`` simulated seconds; every third fails.

    They stay queued (no slot to run in) until :func:`let_jobs_run`, so a slow import on
    a busy machine cannot see them end before any worker polls.
    """
    emulator.max_active_jobs = 0
    emulator.queue_delay = 0.0
    ids = emulator.seed_jobs(n, status=IN_QUEUE)
    with emulator.state.lock:
        for index, job_id in enumerate(ids):
            job = emulator.state.jobs[job_id]
            job.duration = durations(index)
            job.will_fail = index % 3 == 2
    with TensorPixClient.for_account() as client:
        sync_jobs(list(client.iter_jobs()))
    return ids


def let_jobs_run(workers: Workers, emulator: TensorPixEmulator, n: int) -> None:
    """Once every worker consumes (they boot slowly on a busy machine), let the jobs run."""
    deadline = time.monotonic() + 60
    while workers.ready() < len(workers.processes):
        if time.monotonic() > deadline:
            pytest.fail(f"the workers did not start\n{workers.logs()}")
        time.sleep(0.1)
    emulator.max_active_jobs = n


def test_worker_and_beat_bring_every_job_to_its_final_status(
    workers: Workers, fast_emulator: TensorPixEmulator
) -> None:
    add_jobs(fast_emulator, 6, lambda index: 30.0 + 15 * index)
    Job.objects.update(next_poll_at=None)

    workers.start("solo", beat=True)
    let_jobs_run(workers, fast_emulator, 6)
    wait_until_all_final(workers, timeout=90)

    statuses = sorted(job.status or 0 for job in Job.objects.all())
    assert statuses == [-1, -1, 2, 2, 2, 2]
    assert_each_transition_dispatched_once(workers)
    assert_matches_emulator(fast_emulator)


def test_two_workers_with_faults_keep_200_jobs_exact(
    workers: Workers, fast_emulator: TensorPixEmulator
) -> None:
    rng = random.Random(9)
    add_jobs(fast_emulator, 200, lambda index: rng.uniform(20.0, 300.0))
    Job.objects.update(next_poll_at=None)
    # One certain fault (the first listing), so that a run whose jobs all end within a
    # few sweeps on a busy machine still goes through an error; then seeded random ones.
    fast_emulator.inject("GET /api/jobs/", "error", status=502)
    fast_emulator.inject("GET /api/jobs/{id}/", "error", status=503, probability=0.1)
    fast_emulator.inject("GET /api/jobs/{id}/", "reset", probability=0.05)
    fast_emulator.inject("GET /api/jobs/", "rate_limit", retry_after=1, probability=0.1)
    fast_emulator.inject("GET /api/jobs/", "error", status=502, probability=0.1)

    workers.start("first", beat=True)
    workers.start("second")
    let_jobs_run(workers, fast_emulator, 200)
    wait_until_all_final(workers, timeout=150)

    fast_emulator.clear_faults()
    faulted = [r for r in fast_emulator.requests if r.status in (0, 429, 502, 503)]
    assert faulted, "the faults never struck"
    assert len(workers.dispatching_processes()) == 2, "both workers refreshed jobs"
    assert_each_transition_dispatched_once(workers)
    assert_matches_emulator(fast_emulator)
