"""Never a double charge: with half of the create answers lost, every local job ends linked
to exactly one remote job, and no remote job is left without its local row.

On PostgreSQL the submissions run in threads (real concurrency, two of them on one URL);
SQLite in memory has one connection per thread, so there they run one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from django_tensorpix import services
from django_tensorpix.enums import SubmissionState
from django_tensorpix.models import Job
from django_tensorpix.testing import TensorPixEmulator

pytestmark = pytest.mark.django_db(transaction=True)

UPSCALE_2X = 1
SHARED_URL = "https://media.example.com/clips/shared_720p.mp4"


@pytest.fixture
def emulator(tensorpix_account: TensorPixEmulator, settings: Any, monkeypatch: Any) -> Any:
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "RECONCILE_DELAY": 0,
        "SUBMIT_GRACE_PERIOD": 0,
    }
    # The broker loses every message: only direct calls and the sweep submit here.
    monkeypatch.setattr(services, "enqueue_submission", lambda job_pk: None)
    return tensorpix_account


def in_threads(calls: list[Callable[[], Any]]) -> None:
    """Run the calls at once (each in its own thread and database connection)."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_twenty_submissions_with_half_the_answers_lost_end_one_remote_job_each(emulator):
    # Half of the create answers are lost after the job was made; of the others, some
    # get a 500 before anything was made (to be found absent, then sent again).
    emulator.inject("POST /api/jobs/from-url/", "lost_response", probability=0.5)
    emulator.inject("POST /api/jobs/from-url/", "error", status=500, probability=0.3)
    urls = [f"https://media.example.com/clips/{n}_720p.mp4" for n in range(18)]
    jobs = [services.enhance_from_url(url, [UPSCALE_2X]) for url in [*urls, SHARED_URL, SHARED_URL]]
    concurrent = connection.vendor == "postgresql"

    def submit(job: Job) -> Callable[[], Any]:
        return lambda: services.submit_job(job)

    if concurrent:
        # The two jobs of one URL race each other; the others go four at a time.
        in_threads([submit(jobs[-2]), submit(jobs[-1]), submit(jobs[-2]), submit(jobs[-1])])
        for start in range(0, 18, 6):
            in_threads([submit(job) for job in jobs[start : start + 6]])
    else:
        for job in jobs:
            services.submit_job(job)
    assert Job.objects.filter(submission_state=SubmissionState.UNCERTAIN).exists()

    for _ in range(30):
        if not Job.objects.awaiting_submission().exists():
            break
        if concurrent:
            in_threads([services.submit_pending_jobs, services.submit_pending_jobs])
        else:
            services.submit_pending_jobs()
    creates = [r.status for r in emulator.requests if r.route.startswith("POST")]
    assert creates.count(0) >= 5  # answers really were lost...
    assert creates.count(500) >= 1  # ...and some requests failed before creating anything
    assert len(creates) == 20 + creates.count(500)  # resent exactly when nothing was made

    states = set(Job.objects.values_list("submission_state", flat=True))
    assert states == {SubmissionState.SUBMITTED}
    linked = list(Job.objects.values_list("tensorpix_id", flat=True))
    assert None not in linked
    assert len(set(linked)) == 20
    assert set(linked) == set(emulator.state.jobs)
    for job in Job.objects.all():
        remote = emulator.state.jobs[job.tensorpix_id]
        assert remote.input_video.external_url == job.video_url
