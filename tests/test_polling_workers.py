"""Real Celery worker processes (and beat) keeping jobs in sync with the emulator.

The workers are ``celery -A tests.polling_celery_app worker`` subprocesses on Redis database 9
with a queue of this run's own, using pytest's test database: PostgreSQL only (an
in-memory SQLite database cannot be shared with another process). Each signal a worker
sends is counted in Redis, so the test can check every transition went out once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobEventKind
from django_tensorpix.models import Job, JobEvent
from django_tensorpix.sync import sync_jobs
from django_tensorpix.sync.specs import JOB
from django_tensorpix.testing import IN_QUEUE, TensorPixEmulator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "postgres" not in os.environ.get("DATABASE_URL", ""),
        reason="worker processes need a database they can share (PostgreSQL)",
    ),
]

ROOT = Path(__file__).resolve().parent.parent
BEAT_INTERVAL = 0.3
WORKER_POLLING = {
    "POLL_MIN_INTERVAL": 0.2,
    "POLL_QUEUED_INTERVAL": 0.5,
    "POLL_MAX_INTERVAL": 1.5,
    "POLL_LEASE": 30.0,
    "POLL_RATE_LIMIT_PAUSE": 1.0,
    "POLL_ERROR_BACKOFF_MAX": 1.0,
}


class Workers:
    """Starts worker processes for one test and stops them before the database goes."""

    def __init__(self, emulator: TensorPixEmulator, tmp_path: Path) -> None:
        run = uuid.uuid4().hex[:12]
        self.queue = f"tensorpix-test-{run}"
        self.signals_key = f"tensorpix-test-signals-{run}"
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL, decode_responses=True)
        self.tmp_path = tmp_path
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        database = connection.settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": (
                f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@"
                f"{database['HOST']}:{database['PORT']}/{database['NAME']}"
            ),
            "TENSORPIX_POLL_TEST_QUEUE": self.queue,
            "TENSORPIX_POLL_TEST_SIGNALS_KEY": self.signals_key,
            "TENSORPIX_POLL_TEST_SETTINGS": json.dumps(
                {
                    "API_KEY": emulator.api_key,
                    "BASE_URL": emulator.base_url,
                    **WORKER_POLLING,
                }
            ),
        }

    def start(self, name: str, *, beat: bool = False) -> None:
        log = self.tmp_path / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.polling_celery_app",
            "worker",
            "--pool=solo",
            f"--queues={self.queue}",
            f"--hostname={name}@%h",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
        env = dict(self.env)
        if beat:
            command += ["--beat", f"--schedule={self.tmp_path / 'beat-schedule'}"]
            env["TENSORPIX_POLL_TEST_BEAT_INTERVAL"] = str(BEAT_INTERVAL)
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.processes.append((process, log))

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.processes)

    def ready(self) -> int:
        return int(self.redis.scard(f"{self.signals_key}:ready"))

    def dispatching_processes(self) -> set[str]:
        return {str(pid) for pid in self.redis.hkeys(f"{self.signals_key}:pids")}

    def signal_counts(self) -> dict[str, int]:
        raw = self.redis.hgetall(self.signals_key)
        return {str(key): int(value) for key, value in raw.items()}

    def stop(self) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, _ in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.redis.delete(
            self.queue,
            self.signals_key,
            f"{self.signals_key}:pids",
            f"{self.signals_key}:ready",
        )
        self.redis.close()


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


def wait_until_all_final(workers: Workers, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Job.objects.active().exists():
        if time.monotonic() > deadline:
            left = list(Job.objects.active().values_list("tensorpix_id", "status"))
            pytest.fail(f"jobs still active after {timeout} s: {left}\n{workers.logs()}")
        time.sleep(0.25)


def assert_each_transition_dispatched_once(workers: Workers) -> None:
    """Every status event the workers recorded (not the import's) had its signals sent once."""
    events = list(JobEvent.objects.filter(kind=JobEventKind.STATUS).exclude(old_value=""))
    expected: dict[str, int] = {}
    for event in events:
        expected[f"{event.pk}:job_status_changed"] = 1
        final = {"2": "job_finished", "-1": "job_failed", "-2": "job_canceled"}
        if event.new_value in final:
            expected[f"{event.pk}:{final[event.new_value]}"] = 1
    deadline = time.monotonic() + 10
    while workers.signal_counts() != expected and time.monotonic() < deadline:
        time.sleep(0.2)  # the last sweep's signals may still be on their way
    assert workers.signal_counts() == expected
    assert all(event.dispatched_at is not None for event in JobEvent.objects.filter(kind="status"))
    for job in Job.objects.all():
        moves = list(job.events.filter(kind="status").values_list("old_value", "new_value"))
        assert len(moves) == len(set(moves)), (job, moves)


def assert_matches_emulator(emulator: TensorPixEmulator) -> None:
    for job in Job.objects.select_related("output_video"):
        payload = emulator.job_payload(job.tensorpix_id)  # type: ignore[arg-type]
        parsed = JOB.parse(payload)
        for name in JOB.column_names():
            assert getattr(job, name) == parsed.values[name], (job, name)
        output = payload["output_video"]
        assert (job.output_video.tensorpix_id if job.output_video else None) == (
            output["id"] if output else None
        )


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
