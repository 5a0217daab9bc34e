"""Chaos: real workers, beat, a broker that restarts, a worker killed, TensorPix misbehaving.

Two Celery worker processes (one with beat) on a private ``redis-server`` this test
starts on a free port, PostgreSQL, and the emulator. Jobs are created through the
services by several users; the same workload runs once without faults (the baseline)
and once with the emulator injecting 5xx, 429 with ``Retry-After``, connection resets,
truncated JSON, latency spikes and lost answers to job creation, while one worker is
SIGKILLed and restarted and Redis is restarted. Afterwards every job row equals the
emulator's state, each local job has exactly one remote job, every transition was
recorded once and dispatched (a repeat only for the same event), nothing is left
retrying, the recognisable API key is in no log or row, and the faulty run's API
requests are compared with the baseline's.

``TENSORPIX_CHAOS_JOBS`` sets the number of jobs (40 here; ``scripts/chaos.py`` runs
300). Run on PostgreSQL only: the workers share the test database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, _state
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core import serializers

from django_tensorpix import services
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobEventKind, SubmissionState
from django_tensorpix.models import Job, JobEvent
from django_tensorpix.testing import TensorPixEmulator
from tests.workers import Workers, assert_matches_emulator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "postgres" not in os.environ.get("DATABASE_URL", ""),
        reason="worker processes need a database they can share (PostgreSQL)",
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

JOBS = int(os.environ.get("TENSORPIX_CHAOS_JOBS", "40"))
USERS = 4
KEY = "tpx-CHAOSCANARY-5be1c0de9a7f"
SPEED = 60.0
CREATE = "POST /api/jobs/from-url/"
FINAL_SIGNALS = {"2": "job_finished", "-1": "job_failed", "-2": "job_canceled"}
# Worker settings: the polling test's fast ones, plus quick re-drives of submissions and
# leases short enough that the killed worker's (on a source, on polled jobs) run out soon.
OVERRIDES = {"RECONCILE_DELAY": 1, "SUBMIT_GRACE_PERIOD": 2, "SUBMIT_LEASE": 8, "POLL_LEASE": 10}


class PrivateRedis:
    """A ``redis-server`` of this test's own on a free loopback port, restartable."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(shutil.which("redis-server")),
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis.from_url(self.url) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def restart(self) -> None:
        """Stop and start again: every queued message and result is gone."""
        self.stop()
        self.start()


@dataclass
class Figures:
    jobs: int
    requests: int
    faults: int = 0
    creates: int = 0
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    routes: dict[str, int] = field(default_factory=dict)


@contextmanager
def producer(broker_url: str, queue: str) -> Iterator[None]:
    """Make this process's ``.delay()`` (the services' on-commit enqueue) use the broker."""
    app = Celery("tensorpix-chaos-producer", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 2, "interval_start": 0.2},
    )
    previous = _state.get_current_app()
    app.set_current()
    try:
        yield
    finally:
        previous.set_current()
        app.close()


def run_workload(tmp_path: Path, settings: Any, *, chaos: bool) -> Figures:
    """Create ``JOBS`` jobs by several users and wait until every one has ended."""
    started = time.monotonic()
    tmp_path.mkdir()
    broker = PrivateRedis(tmp_path)
    broker.start()
    with TensorPixEmulator(api_key=KEY, speed=SPEED, seed=14) as emulator:
        emulator.max_active_jobs = JOBS
        emulator.queue_delay = 0.0
        settings.TENSORPIX = {
            **settings.TENSORPIX,
            "API_KEY": KEY,
            "BASE_URL": emulator.base_url,
            **OVERRIDES,
        }
        tensorpix_settings.reload()
        pool = Workers(
            emulator, tmp_path, broker_url=broker.url, overrides=OVERRIDES, submit_sweep=1.0
        )
        try:
            figures = _drive(emulator, pool, broker, chaos)
        finally:
            pool.stop()
            broker.stop()
        figures.seconds = time.monotonic() - started
        if chaos:
            assert_no_key_in(pool.logs() + stored_rows())
        return figures


def _drive(
    emulator: TensorPixEmulator, pool: Workers, broker: PrivateRedis, chaos: bool
) -> Figures:
    users = [
        get_user_model().objects.create(username=f"chaos-{chaos}-{index}") for index in range(USERS)
    ]
    pool.start("first", beat=True)
    pool.start("second")
    wait_for(lambda: pool.ready() == 2, pool, "the workers to start", timeout=90)
    if chaos:
        emulator.inject("*", "error", status=503, probability=0.10)
        emulator.inject("*", "rate_limit", retry_after=1, probability=0.05)
        emulator.inject("*", "reset", probability=0.02)
        emulator.inject("*", "truncated", probability=0.01)
        emulator.inject("*", "latency", delay=0.5, probability=0.02)
        emulator.inject(CREATE, "lost_response", probability=0.10)
    with producer(broker.url, pool.queue):
        for index in range(JOBS):
            services.enhance_from_url(
                f"https://media.example.com/chaos/{chaos}/{index}_720p.mp4",
                [1],
                user=users[index % USERS],
            )
            if chaos and index == JOBS // 2:
                pool.kill(1)
                broker.restart()
                pool.start("second-again")
    wait_for(
        lambda: (
            not Job.objects.exclude(submission_state=SubmissionState.SUBMITTED).exists()
            and not Job.objects.active().exists()
        ),
        pool,
        "every job submitted and ended",
        timeout=60 + JOBS * 2,
    )
    if chaos:
        emulator.clear_faults()
    requests = len(emulator.requests)
    figures = Figures(
        jobs=Job.objects.count(),
        requests=requests,
        faults=sum(1 for r in emulator.requests if r.status in (0, 429, 503)),
        creates=sum(1 for r in emulator.requests if r.route == CREATE),
        routes=dict(
            Counter(
                f"{r.route} {r.status}{' ' + r.fault if r.fault else ''}" for r in emulator.requests
            ).most_common()
        ),
    )
    check_state(emulator, pool, figures)
    # Nothing retries forever: with every job ended, TensorPix hears nothing more.
    time.sleep(3)
    assert len(emulator.requests) == requests, emulator.requests[requests:]
    return figures


def check_state(emulator: TensorPixEmulator, pool: Workers, figures: Figures) -> None:
    local = list(Job.objects.values_list("tensorpix_id", flat=True))
    assert None not in local
    remote = sorted(emulator.state.jobs)
    assert len(local) == JOBS
    figures.lost = JOBS - len(set(local) & set(remote))
    assert sorted(local) == remote, "exactly one remote job per local job"  # type: ignore[type-var]
    assert_matches_emulator(emulator)
    for job in Job.objects.all():
        moves = list(job.events.filter(kind="status").values_list("old_value", "new_value"))
        assert len(moves) == len(set(moves)), (job, moves)
    expected = set()
    for event in JobEvent.objects.filter(kind=JobEventKind.STATUS):
        expected.add(f"{event.pk}:job_status_changed")
        if event.new_value in FINAL_SIGNALS:
            expected.add(f"{event.pk}:{FINAL_SIGNALS[event.new_value]}")
    counts: dict[str, int] = {}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        counts = pool.signal_counts()
        if expected <= set(counts):
            break
        time.sleep(0.2)
    assert set(counts) == expected, "every transition dispatched, and nothing else"
    assert not JobEvent.objects.filter(kind="status", dispatched_at=None).exists()
    # A repeat is the same event (same key) sent again by a process killed mid-dispatch.
    figures.duplicates = sum(count - 1 for count in counts.values())


def wait_for(condition: Any, pool: Workers, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = list(Job.objects.values_list("submission_state", "status")[:20])
            pytest.fail(f"timed out waiting for {what}: {states}\n{pool.logs()}")
        time.sleep(0.25)


def stored_rows() -> str:
    models = apps.get_app_config("django_tensorpix").get_models()
    return "\n".join(serializers.serialize("json", m._default_manager.all()) for m in models)


def assert_no_key_in(text: str) -> None:
    assert KEY not in text, "the API key leaked into a worker log or a row"


def reset_rows() -> None:
    for model in reversed(list(apps.get_app_config("django_tensorpix").get_models())):
        model._default_manager.all().delete()


@pytest.mark.chaos
def test_chaos_loses_nothing_duplicates_nothing_and_stays_close_to_the_fault_free_run(
    tmp_path: Path, settings: Any
) -> None:
    baseline = run_workload(tmp_path / "baseline", settings, chaos=False)
    reset_rows()
    faulty = run_workload(tmp_path / "chaos", settings, chaos=True)

    print(f"\nchaos figures ({JOBS} jobs, {USERS} users):")
    print(f"  fault-free run: {baseline}")
    print(f"  chaos run:      {faulty}")
    print(f"  requests ratio: {faulty.requests / baseline.requests:.2f}")
    assert faulty.faults > 0, "the faults never struck"
    assert faulty.lost == 0
    # The goal is 1.5x; about a quarter of the chaos run's requests are struck
    # (each costs at least one more), so the bounded run allows 2x and reports the ratio.
    assert faulty.requests <= 2 * baseline.requests
