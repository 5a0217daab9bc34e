"""Chaos: real workers, beat, a broker that restarts, a worker killed, TensorPix misbehaving.

Two Celery worker processes (one with beat) on a private ``redis-server`` this test
starts on a free port (and another one, never restarted, as the result backend),
PostgreSQL, and the emulator. Jobs
are created through the REST API by several users (with a create rate of the run's own:
the throttle stays on); the same workload runs once without faults (the baseline) and
once with the emulator injecting 10% 5xx, 5% 429 with ``Retry-After``, 2% connection
resets, 1% truncated JSON, latency spikes and lost answers to job creation, while one
worker is SIGKILLed in the middle of a dispatch and restarted, and Redis is restarted.

Afterwards every job row equals the emulator's state; each local job has exactly one
remote job; every transition was recorded once and dispatched, a repeat only for the
event the killed worker was dispatching, with the same event id; nothing is retrying
(no job left to submit or poll, TensorPix hears nothing more); the recognisable API key
is in no worker log (DEBUG), stored task result, published task message, log record of
this process (DEBUG), admin page, REST response or row (``remote_data`` and the event
history included); and the faulty run's API requests are compared with the baseline's.

``TENSORPIX_CHAOS_JOBS`` sets the number of jobs (40 here; ``scripts/chaos.py`` runs
300). Run on PostgreSQL only: the workers share the test database.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, _state
from celery.signals import before_task_publish
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import serializers
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobEventKind
from django_tensorpix.models import SIGNALLED_EVENT_KINDS, Job, JobEvent, SubmissionLock
from django_tensorpix.testing import TensorPixEmulator
from tests.polling_celery_app import record_published
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
JOBS_API = "/api/tensorpix/jobs/"
FINAL_SIGNALS = {"2": "job_finished", "-1": "job_failed", "-2": "job_canceled"}
# Worker settings: the polling test's fast ones, plus quick re-drives of submissions and
# leases short enough that the killed worker's (on a source, on polled jobs, on the
# dispatch of its event) run out soon.
OVERRIDES = {"RECONCILE_DELAY": 1, "SUBMIT_GRACE_PERIOD": 2, "SUBMIT_LEASE": 8, "POLL_LEASE": 10}
# Silence that shows nothing is retrying: many beat sweeps (0.3 s, submissions 1 s),
# longer than any backoff of the run (Retry-After 1 s, POLL_ERROR_BACKOFF_MAX 1 s).
QUIET = 3.0


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

    def stored_results(self) -> list[str]:
        """Every task result in the backend (with ``result_extended``: name, args...)."""
        with redis.Redis.from_url(self.url) as client:
            return [
                value.decode(errors="replace")
                for key in client.scan_iter("celery-task-meta-*")
                if (value := client.get(key)) is not None
            ]


@dataclass
class Figures:
    jobs: int = 0
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    creates: int = 0
    duplicates: list[int] = field(default_factory=list)
    lost: int = 0
    seconds: float = 0.0
    breakdown: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"jobs {self.jobs}, API requests {self.requests} ({self.creates} creates), "
            f"faults {sum(self.faults.values())} {self.faults}, lost {self.lost}, "
            f"duplicate dispatches {len(self.duplicates)} (events {self.duplicates}), "
            f"{self.seconds:.0f} s",
        ]
        lines += [f"      {count:5d}  {what}" for what, count in self.breakdown.items()]
        return "\n".join(lines)


@dataclass
class Run:
    """What one workload left to check."""

    emulator: TensorPixEmulator
    pool: Workers
    broker: PrivateRedis
    results: PrivateRedis
    chaos: bool
    figures: Figures = field(default_factory=Figures)
    killed_pid: int | None = None
    stalled_event: int | None = None


@contextmanager
def producer(run: Run, published: Path) -> Iterator[None]:
    """Make this process's ``.delay()`` (the API's on-commit enqueue) use the broker, and
    record the task messages it publishes. Their results are kept, as the workers'."""
    app = Celery("tensorpix-chaos-producer", broker=run.broker.url, backend=run.results.url)
    app.conf.update(
        task_default_queue=run.pool.queue,
        # A message says whether its result is kept: this process's word counts.
        task_annotations={"*": {"ignore_result": False}},
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 2, "interval_start": 0.2},
    )

    def record(headers: Any = None, body: Any = None, **kwargs: Any) -> None:
        record_published(str(published), headers, body)

    before_task_publish.connect(record, weak=False)
    previous = _state.get_current_app()
    app.set_current()
    try:
        yield
    finally:
        previous.set_current()
        before_task_publish.disconnect(record)
        app.close()


def run_workload(tmp_path: Path, settings: Any, *, chaos: bool) -> Run:
    """Create ``JOBS`` jobs through the REST API, wait until all ended, check the state."""
    started = time.monotonic()
    tmp_path.mkdir()
    broker, results = PrivateRedis(tmp_path), PrivateRedis(tmp_path)
    broker.start()
    results.start()
    per_user = math.ceil(JOBS / USERS)
    # The run's own create rate: each user's jobs, and as many retries of refused ones.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"tensorpix_job_create": f"{2 * per_user}/hour"},
    }
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
            emulator,
            tmp_path,
            broker_url=broker.url,
            overrides=OVERRIDES,
            submit_sweep=1.0,
            result_backend=results.url,
            published=tmp_path / "published.jsonl",
            debug_logs=chaos,
        )
        run = Run(emulator, pool, broker, results, chaos)
        try:
            _drive(run)
            check_state(run)
            check_dispatches(run)
            check_nothing_left_retrying(run)
            if chaos:
                scan_for_the_key(run, tmp_path, settings)
        finally:
            pool.stop()
            broker.stop()
            results.stop()
        run.figures.seconds = time.monotonic() - started
        return run


def _drive(run: Run) -> None:
    emulator, pool = run.emulator, run.pool
    clients = [api_client(f"chaos-{run.chaos}-{index}") for index in range(USERS)]
    pool.start("first", beat=True)
    pool.start("second")
    wait_for(lambda: pool.ready() == 2, pool, "the workers to start", timeout=90)
    if run.chaos:
        emulator.inject("*", "error", status=503, probability=0.10)
        emulator.inject("*", "rate_limit", retry_after=1, probability=0.05)
        emulator.inject("*", "reset", probability=0.02)
        emulator.inject("*", "truncated", probability=0.01)
        emulator.inject("*", "latency", delay=0.5, probability=0.02)
        emulator.inject(CREATE, "lost_response", probability=0.10)
    with producer(run, pool.tmp_path / "published.jsonl"):
        for index in range(JOBS):
            create_job(clients[index % USERS], f"https://media.example.com/{run.chaos}/{index}.mp4")
            if run.chaos and index == JOBS // 2:
                pool.stall_next_dispatch(1)
            if run.chaos and run.killed_pid is None and pool.stalled_event() is not None:
                kill_mid_dispatch_and_restart(run)
        if run.chaos and run.killed_pid is None:
            wait_for(lambda: pool.stalled_event() is not None, pool, "a stalled dispatch", 60)
            kill_mid_dispatch_and_restart(run)
    wait_for(
        lambda: (
            not Job.objects.awaiting_submission().exists() and not Job.objects.active().exists()
        ),
        pool,
        "every job submitted and ended",
        timeout=60 + JOBS * 2,
    )
    if run.chaos:
        emulator.clear_faults()


def api_client(username: str) -> APIClient:
    """A REST API client logged in as a new user allowed to create jobs."""
    user = get_user_model().objects.create_user(username)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="django_tensorpix", codename="add_job")
    )
    client = APIClient()
    client.force_authenticate(user)
    return client


def create_job(client: APIClient, url: str) -> None:
    """POST a job as a user would; a 502/503 (TensorPix's AI filter list unreadable while
    the ML models are resolved: nothing was created) is tried again."""
    for _ in range(5):
        response = client.post(JOBS_API, {"video_url": url, "ml_models": [1]}, format="json")
        if response.status_code == 202:
            return
        assert response.status_code in (502, 503), response.content
        time.sleep(0.2)
    pytest.fail(f"the API kept refusing {url}: {response.content!r}")


def kill_mid_dispatch_and_restart(run: Run) -> None:
    """SIGKILL the worker hanging in a receiver, restart Redis, start a new worker."""
    run.stalled_event = run.pool.stalled_event()
    run.killed_pid = run.pool.pid(1)
    run.pool.kill(1)
    run.broker.restart()
    run.pool.start("second-again")


def check_state(run: Run) -> None:
    emulator, figures = run.emulator, run.figures
    records = emulator.requests
    figures.requests = len(records)
    figures.creates = sum(1 for r in records if r.route == CREATE)
    figures.faults = dict(Counter(r.fault for r in records if r.fault).most_common())
    figures.breakdown = dict(
        Counter(f"{r.route} {r.status} {r.fault}".rstrip() for r in records).most_common()
    )
    local = list(Job.objects.values_list("tensorpix_id", flat=True))
    assert None not in local
    remote = sorted(emulator.state.jobs)
    assert len(local) == JOBS
    figures.jobs = len(local)
    figures.lost = JOBS - len(set(local) & set(remote))
    assert sorted(local) == remote, "exactly one remote job per local job"  # type: ignore[type-var]
    assert_matches_emulator(emulator)
    for job in Job.objects.all():
        moves = list(job.events.filter(kind="status").values_list("old_value", "new_value"))
        assert len(moves) == len(set(moves)), ("a transition recorded twice", job, moves)


def check_dispatches(run: Run) -> None:
    """Every status event dispatched; twice only what the killed worker was sending.

    A repeat carries the same event (id, job, old and new value), and its first copy was
    sent by the killed process: a process that lives never sends an event twice.
    """
    events = {event.pk: event for event in JobEvent.objects.filter(kind=JobEventKind.STATUS)}
    expected = {(pk, "job_status_changed") for pk in events}
    expected |= {
        (pk, FINAL_SIGNALS[event.new_value])
        for pk, event in events.items()
        if event.new_value in FINAL_SIGNALS
    }
    copies: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    deadline = time.monotonic() + 15
    while True:  # the last sweep's signals may still be on their way
        copies.clear()
        for entry in run.pool.dispatches():
            copies[(entry["event"], entry["signal"])].append(entry)
        if expected <= set(copies) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(copies) == expected, "every transition dispatched, and nothing else"
    assert not JobEvent.objects.filter(kind="status", dispatched_at=None).exists()
    for (pk, _), sent in copies.items():
        event = events[pk]
        for copy in sent:
            assert (copy["job"], copy["old"], copy["new"]) == (
                event.job_id,
                event.old_value,
                event.new_value,
            )
        if len(sent) > 1:
            assert len(sent) == 2, sent
            assert sent[0]["pid"] == run.killed_pid, ("sent twice by a live process", sent)
            assert sent[1]["pid"] != run.killed_pid
    run.figures.duplicates = sorted({pk for (pk, _), sent in copies.items() if len(sent) > 1})
    if run.chaos:
        # The event it hung in, and any sent before it in the same batch (their
        # dispatched_at is written after the batch), were all sent again.
        assert run.stalled_event in run.figures.duplicates, "the killed dispatch was redone"
    else:
        assert run.figures.duplicates == []


def check_nothing_left_retrying(run: Run) -> None:
    """No job left to submit, poll or dispatch; no lease held; TensorPix hears nothing."""
    now = timezone.now()
    assert not Job.objects.awaiting_submission().exists()
    far = now + timedelta(days=365)
    assert not Job.objects.due_for_poll(far).exists(), "a job would be polled again"
    # (The killed worker's lease row may be left, run out: the next claim reuses it.)
    assert not SubmissionLock.objects.filter(held_until__gte=now).exists()
    assert not Job.objects.filter(poll_lease_until__gte=now).exists()
    pending = JobEvent.objects.filter(dispatched_at=None, kind__in=SIGNALLED_EVENT_KINDS)
    assert not pending.exists()
    requests = len(run.emulator.requests)
    time.sleep(QUIET)
    assert len(run.emulator.requests) == requests, run.emulator.requests[requests:]


def scan_for_the_key(run: Run, tmp_path: Path, settings: Any) -> None:
    """The recognisable key is nowhere a user, an operator or an attacker may read."""
    results = run.results.stored_results()
    names = Counter(
        (json.loads(result).get("name"), bool(json.loads(result).get("args"))) for result in results
    )
    assert names[("django_tensorpix.submit_job", True)], (
        f"no submit_job result with its args: {names}"
    )
    published = (tmp_path / "published.jsonl").read_text().splitlines()
    assert any("django_tensorpix.submit_job" in line for line in published)
    assert any("django_tensorpix.poll_due_jobs" in line for line in published)
    worker_logs = run.pool.full_logs()
    assert "DEBUG" in worker_logs or "Sending" in worker_logs, "no DEBUG log to scan"
    places: dict[str, list[str]] = {
        "worker logs (DEBUG)": [worker_logs],
        "stored task results": results,
        "published task messages": published,
        "rows (remote_data, event history...)": [stored_rows()],
        "admin pages": admin_pages(),
        "REST responses": rest_responses(settings),
    }
    for place, texts in places.items():
        assert texts, f"nothing to scan in {place}"
        leaks = [text[:300] for text in texts if KEY in text]
        assert not leaks, f"the API key leaked into {place}: {leaks}"


def stored_rows() -> str:
    models = apps.get_app_config("django_tensorpix").get_models()
    return "\n".join(serializers.serialize("json", m._default_manager.all()) for m in models)


def admin_pages() -> list[str]:
    """A superuser's view of every model's changelist and of objects' change pages."""
    user = get_user_model().objects.create_superuser("chaos-admin")
    client = Client()
    client.force_login(user)
    pages = []
    for model in admin.site._registry:
        if model._meta.app_label != "django_tensorpix":
            continue
        info = (model._meta.app_label, model._meta.model_name)
        urls = [reverse("admin:{}_{}_changelist".format(*info))]
        for pk in model._default_manager.values_list("pk", flat=True)[:50]:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            pages.append(response.content.decode())
    return pages


def rest_responses(settings: Any) -> list[str]:
    """Each user's job list and details (events and remote_data shown) through the API."""
    settings.TENSORPIX = {**settings.TENSORPIX, "API_EXPOSE_REMOTE_DATA": True}
    bodies = []
    for user in get_user_model().objects.filter(tensorpix_jobs__isnull=False).distinct():
        client = APIClient()
        client.force_authenticate(user)
        url: str | None = JOBS_API
        while url:
            response = client.get(url)
            assert response.status_code == 200
            bodies.append(response.content.decode())
            url = response.json()["next"]
        for pk in Job.objects.filter(user=user).values_list("pk", flat=True)[:50]:
            response = client.get(f"{JOBS_API}{pk}/")
            assert response.status_code == 200
            bodies.append(response.content.decode())
    return bodies


def wait_for(condition: Callable[[], bool], pool: Workers, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            states = list(Job.objects.values_list("submission_state", "status")[:20])
            pytest.fail(f"timed out waiting for {what}: {states}\n{pool.logs()}")
        time.sleep(0.25)


def reset_rows() -> None:
    for model in reversed(list(apps.get_app_config("django_tensorpix").get_models())):
        model._default_manager.all().delete()


@pytest.mark.chaos
def test_chaos_loses_nothing_duplicates_nothing_and_stays_close_to_the_fault_free_run(
    tmp_path: Path, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django_tensorpix")
    baseline = run_workload(tmp_path / "baseline", settings, chaos=False).figures
    reset_rows()
    faulty = run_workload(tmp_path / "chaos", settings, chaos=True).figures
    ratio = faulty.requests / baseline.requests

    print(f"\nchaos figures ({JOBS} jobs through the REST API, {USERS} users):")
    print(f"  fault-free run: {baseline}")
    print(f"  chaos run:      {faulty}")
    print(f"  requests: {faulty.requests} / {baseline.requests} = {ratio:.2f}x")
    assert sum(faulty.faults.values()) > 0, "the faults never struck"
    assert faulty.lost == 0
    # This process's log records (the API's requests, at DEBUG) hold no key either.
    records = [logging.Formatter().format(record) for record in caplog.records]
    assert records, "no log record of this process to scan"
    assert not [text for text in records if KEY in text]
    # The goal, 1.5x, holds for the long run (scripts/chaos.py, 300 jobs). The
    # bounded run's 40 jobs meet few faults, so their share of requests varies from run
    # to run (1.3x to 1.5x measured): it allows 2x and reports the ratio.
    assert ratio <= (1.5 if JOBS >= 300 else 2)
