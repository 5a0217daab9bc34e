"""Real Celery worker processes (and beat) for the tests that need them, and their checks.

``celery -A tests.polling_celery_app worker`` subprocesses on a queue of the run's own,
against pytest's test database (PostgreSQL only: an in-memory SQLite database cannot be
shared with another process). Each job signal a worker sends is recorded in the suite's
Redis (see tests/polling_celery_app.py), so a test can check every transition went out,
and which process sent it. Used by tests/test_polling_workers.py and tests/test_chaos.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection

from django_tensorpix.enums import JobEventKind
from django_tensorpix.models import Job, JobEvent
from django_tensorpix.sync.specs import JOB
from django_tensorpix.testing import TensorPixEmulator

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

    def __init__(
        self,
        emulator: TensorPixEmulator,
        tmp_path: Path,
        *,
        broker_url: str | None = None,
        overrides: dict[str, Any] | None = None,
        submit_sweep: float | None = None,
        result_backend: str | None = None,
        published: Path | None = None,
        debug_logs: bool = False,
    ) -> None:
        """``broker_url``: a private Redis (the dispatches stay in the suite's Redis, so
        restarting the broker loses none); ``overrides`` merge over the TENSORPIX settings;
        ``submit_sweep`` adds ``submit_pending_jobs`` to beat at that interval;
        ``result_backend`` stores every task's result (its arguments included) there;
        ``published`` is a file every published task message is appended to;
        ``debug_logs`` writes each worker's DEBUG log next to its output."""
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
            "TENSORPIX_POLL_TEST_SIGNALS_URL": settings.CELERY_BROKER_URL,
            "CELERY_BROKER_URL": broker_url or settings.CELERY_BROKER_URL,
            "TENSORPIX_POLL_TEST_SETTINGS": json.dumps(
                {
                    "API_KEY": emulator.api_key,
                    "BASE_URL": emulator.base_url,
                    **WORKER_POLLING,
                    **(overrides or {}),
                }
            ),
        }
        if submit_sweep is not None:
            self.env["TENSORPIX_POLL_TEST_SUBMIT_SWEEP"] = str(submit_sweep)
        if result_backend is not None:
            self.env["TENSORPIX_TEST_RESULT_BACKEND"] = result_backend
        if published is not None:
            self.env["TENSORPIX_TEST_PUBLISHED"] = str(published)
        self.debug_logs = debug_logs

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
        if self.debug_logs:
            env["TENSORPIX_TEST_DEBUG_LOG"] = str(self.tmp_path / f"{name}.debug.log")
        if beat:
            command += ["--beat", f"--schedule={self.tmp_path / 'beat-schedule'}"]
            env["TENSORPIX_POLL_TEST_BEAT_INTERVAL"] = str(BEAT_INTERVAL)
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        self.processes.append((process, log))

    def pid(self, index: int) -> int:
        return self.processes[index][0].pid

    def kill(self, index: int) -> None:
        """SIGKILL one worker (no warm shutdown: its task and any dispatch die mid-way)."""
        process, _ = self.processes[index]
        process.kill()
        process.wait()

    def stall_next_dispatch(self, index: int) -> None:
        """Make worker ``index`` hang in its next ``job_status_changed`` receiver call."""
        self.redis.set(f"{self.signals_key}:stall", str(self.pid(index)))

    def stalled_event(self) -> int | None:
        """The event whose dispatch the stalled worker hangs in, once it does."""
        value = self.redis.get(f"{self.signals_key}:stalled")
        return None if value is None else int(value)

    def logs(self) -> str:
        """The end of each worker's output, for failure messages."""
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.processes)

    def full_logs(self) -> str:
        """Everything the workers wrote: their output and DEBUG logs, whole."""
        logs = sorted(self.tmp_path.glob("*.log"))
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in logs)

    def ready(self) -> int:
        return int(self.redis.scard(f"{self.signals_key}:ready"))

    def dispatches(self) -> list[dict[str, Any]]:
        """Every signal sent, in the order sent: event, signal, job, old, new, pid."""
        return [json.loads(entry) for entry in self.redis.lrange(self.signals_key, 0, -1)]

    def dispatching_processes(self) -> set[int]:
        return {entry["pid"] for entry in self.dispatches()}

    def signal_counts(self) -> dict[str, int]:
        """How often each ``<event id>:<signal>`` was sent."""
        counts: dict[str, int] = {}
        for entry in self.dispatches():
            key = f"{entry['event']}:{entry['signal']}"
            counts[key] = counts.get(key, 0) + 1
        return counts

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
            f"{self.signals_key}:ready",
            f"{self.signals_key}:stall",
            f"{self.signals_key}:stalled",
        )
        self.redis.close()


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
