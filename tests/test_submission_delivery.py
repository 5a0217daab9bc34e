"""Submission through a real Celery worker process, with beat, over Redis, on PostgreSQL.

The worker runs in its own process against the test database (so PostgreSQL only: SQLite
in memory cannot be shared), on a queue of its own in Redis database 10. It covers what
only real delivery shows: the task sent on commit, a lost message re-driven by the periodic
sweep, archiving started by ``job_finished``, and the admin's queued sync and archive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import _state
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import reverse

from django_tensorpix import services
from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.models import Job, Video
from django_tensorpix.sync import sync_job
from django_tensorpix.testing import TensorPixEmulator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="the worker process needs a database it can share (PostgreSQL)",
    ),
]

BROKER = "redis://127.0.0.1:6379/10"
ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tensorpix_account: TensorPixEmulator, settings: Any, tmp_path: Path) -> Iterator[Any]:
    """A worker with embedded beat (sweep every second) on a fresh queue; the test's app."""
    queue = f"tensorpix-tests-10-{uuid.uuid4().hex[:8]}"
    overrides = {
        "API_KEY": tensorpix_account.api_key,
        "BASE_URL": tensorpix_account.base_url,
        "RECONCILE_DELAY": 0,
        "SUBMIT_GRACE_PERIOD": 1,
        "ARCHIVE_OUTPUTS": True,
    }
    settings.TENSORPIX = {**settings.TENSORPIX, **overrides}
    settings.MEDIA_ROOT = str(tmp_path / "media")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "DATABASE_URL": database_url(),
        "TENSORPIX_TEST_BROKER": BROKER,
        "TENSORPIX_TEST_QUEUE": queue,
        "TENSORPIX_TEST_SWEEP": "1",
        "TENSORPIX_TEST_OVERRIDES": json.dumps(overrides),
        "TENSORPIX_TEST_MEDIA_ROOT": settings.MEDIA_ROOT,
    }
    log = (tmp_path / "worker.log").open("w")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.celery_app",
        "worker",
        "-B",
        "-s",
        str(tmp_path / "beat-schedule"),
        "-P",
        "solo",
        "-Q",
        queue,
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        "-l",
        "INFO",
    ]
    # The command is built above from constants and this interpreter: nothing untrusted.
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    process.log_path = tmp_path / "worker.log"  # type: ignore[attr-defined]
    previous = _state.get_current_app()
    from tests import celery_app

    celery_app.app.conf.task_default_queue = queue
    celery_app.app.set_current()
    try:
        yield process
    finally:
        previous.set_current()
        assert _state.get_current_app() is previous
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        redis.Redis.from_url(BROKER).delete(queue)


def wait_for(condition: Callable[[], bool], worker: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.poll() is None, "the worker died:\n" + worker.log_path.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n" + worker.log_path.read_text()[-3000:])


def state(job: Job) -> str:
    job.refresh_from_db()
    return job.submission_state


def test_worker_submits_on_commit_resubmits_lost_messages_and_archives(
    worker, tensorpix_account, monkeypatch
):
    emulator = tensorpix_account
    job = services.enhance_from_url("https://media.example.com/a_720p.mp4", [1])
    wait_for(lambda: state(job) == SubmissionState.SUBMITTED, worker, "the on-commit task")

    # The broker loses this job's message: only the periodic sweep can submit it.
    monkeypatch.setattr(services, "enqueue_submission", lambda job_pk: None)
    lost = services.enhance_from_url("https://media.example.com/b_720p.mp4", [1])
    assert state(lost) == SubmissionState.PENDING
    wait_for(lambda: state(lost) == SubmissionState.SUBMITTED, worker, "the sweep")
    assert len(emulator.state.jobs) == 2

    # Finishing the job (synced here) sends job_finished; the worker archives the output.
    emulator.advance(3600)
    job.refresh_from_db()
    with TensorPixClient.for_account() as client:
        assert job.tensorpix_id is not None
        sync_job(client.get_job(job.tensorpix_id))
    job.refresh_from_db()
    assert job.status == JobStatus.FINISHED
    wait_for(lambda: bool(Job.objects.get(pk=job.pk).archived_file), worker, "the archive")
    job.refresh_from_db()
    assert job.output_video is not None
    assert (Path(job.archived_file.path)).stat().st_size == job.output_video.size


def test_worker_uploads_a_video_on_commit_and_re_drives_a_lost_upload_message(
    worker, tensorpix_account, monkeypatch
):
    emulator = tensorpix_account
    video = services.upload_video(ContentFile(b"x" * 2000, name="first.mp4"))
    wait_for(lambda: uploaded(video), worker, "the on-commit upload task")

    # The broker loses this upload's message: only the periodic sweep can upload it.
    monkeypatch.setattr(services, "enqueue_upload", lambda video_pk: None)
    lost = services.upload_video(ContentFile(b"y" * 3000, name="second.mp4"))
    assert not uploaded(lost)
    wait_for(lambda: uploaded(lost), worker, "the upload sweep")
    assert sorted(v.size for v in emulator.state.videos.values()) == [2000, 3000]
    assert posts_of(emulator, "POST /api/videos/") == 2


def uploaded(video: Video) -> bool:
    video.refresh_from_db()
    return video.tensorpix_id is not None


def posts_of(emulator: TensorPixEmulator, route: str) -> int:
    return sum(1 for record in emulator.requests if record.route == route)


def test_the_admin_queues_its_sync_and_archive_for_the_worker(
    worker, tensorpix_account, admin_client, settings
):
    emulator = tensorpix_account
    finished = emulator.seed_jobs(3, status=JobStatus.FINISHED)
    settings.TENSORPIX = {**settings.TENSORPIX, "ADMIN_RUN_INLINE": False}

    page = admin_client.post(reverse("admin:django_tensorpix_job_sync"), follow=True)
    assert "Sync from TensorPix queued as task" in page.text
    wait_for(lambda: Job.objects.count() == 3, worker, "the queued sync")
    assert set(Job.objects.values_list("tensorpix_id", flat=True)) == set(finished)

    # Jobs imported already finished are history: ARCHIVE_OUTPUTS leaves them alone, so
    # only the admin's action can archive one.
    assert not Job.objects.exclude(archived_file="").exists()
    job = Job.objects.order_by("pk").first()
    assert job is not None
    page = admin_client.post(
        reverse("admin:django_tensorpix_job_changelist"),
        {"action": "archive_outputs", "_selected_action": [job.pk]},
        follow=True,
    )
    assert "Archiving queued: 1 job" in page.text
    wait_for(lambda: bool(Job.objects.get(pk=job.pk).archived_file), worker, "the archive")
    job.refresh_from_db()
    assert job.output_video is not None
    assert Path(job.archived_file.path).stat().st_size == job.output_video.size
