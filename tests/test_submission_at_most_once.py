"""Never a double charge: with half of the create answers lost, every local job ends linked
to exactly one remote job, and no remote job is left without its local row.

On PostgreSQL the submissions run in threads (real concurrency, two of them on one URL);
SQLite in memory has one connection per thread, so there they run one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import F

from django_tensorpix import services, submission
from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import tensorpix_settings
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


# -- one reading of the job list per sweep ---------------------------------------------

CREATE = "POST /api/jobs/from-url/"
LIST = "GET /api/jobs/"


def lost_submissions(emulator: TensorPixEmulator, count: int) -> list[Job]:
    """``count`` jobs whose create answers were lost (TensorPix made each one)."""
    emulator.inject(CREATE, "lost_response", times=count)
    jobs = [
        services.submit_job(
            services.enhance_from_url(f"https://media.example.com/lost/{n}_720p.mp4", [UPSCALE_2X])
        )
        for n in range(count)
    ]
    assert {job.submission_state for job in jobs} == {SubmissionState.UNCERTAIN}
    emulator.clear_faults()
    emulator.clear_requests()
    return jobs


def requests_to(emulator: TensorPixEmulator, route: str) -> int:
    return sum(1 for record in emulator.requests if record.route == route)


@pytest.mark.parametrize("order", ["newest", "oldest", "shuffled"])
def test_a_sweep_reads_the_job_list_once_for_all_its_lost_answers(emulator, settings, order):
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 7}
    emulator.list_order = order
    emulator.seed_jobs(30)
    jobs = lost_submissions(emulator, 6)

    assert services.submit_pending_jobs() == 6

    pages = -(-len(emulator.state.jobs) // 7)
    assert pages > 1
    assert requests_to(emulator, LIST) == pages  # one reading, whatever the order
    assert requests_to(emulator, CREATE) == 0  # nothing sent twice
    for job in jobs:
        job.refresh_from_db()
        assert job.submission_state == SubmissionState.SUBMITTED
        assert emulator.state.jobs[job.tensorpix_id].input_video.external_url == job.video_url


def test_a_failed_reading_is_tried_once_per_sweep_and_sends_nothing(emulator):
    jobs = lost_submissions(emulator, 3)
    emulator.inject(LIST, "error", status=503, times=None)

    services.submit_pending_jobs()

    # One reading (the first page, with the client's retries) for the three jobs.
    assert requests_to(emulator, LIST) == tensorpix_settings.MAX_RETRIES + 1
    assert requests_to(emulator, CREATE) == 0
    for job in jobs:
        job.refresh_from_db()
        assert job.submission_state == SubmissionState.UNCERTAIN
        assert "Reconciling failed for now" in job.last_submission_error
    emulator.clear_faults()
    services.submit_pending_jobs()
    assert set(Job.objects.values_list("submission_state", flat=True)) == {
        SubmissionState.SUBMITTED
    }
    assert len(emulator.state.jobs) == 3


def test_a_reading_older_than_the_attempt_settles_nothing(emulator, settings):
    """A sweep's reading is used only for attempts that had ended before it began."""
    settings.TENSORPIX = {**settings.TENSORPIX, "RECONCILE_DELAY": 60}
    (job,) = lost_submissions(emulator, 1)
    Job.objects.filter(pk=job.pk).update(submitted_at=F("submitted_at") - timedelta(seconds=61))
    job.refresh_from_db()
    job_lists = submission._JobLists()
    with TensorPixClient.for_account(job.account) as client:
        job_list = job_lists.get(job.account, client)
        assert job_list.covers(job)
        # The job was tried again after that reading began: the reading cannot show it.
        retried_at = job_list.read_at - timedelta(seconds=59)
        Job.objects.filter(pk=job.pk).update(submitted_at=retried_at)
        job.refresh_from_db()
        assert not job_list.covers(job)
        assert submission._reconcile(job, client, job_lists) is False
    assert requests_to(emulator, LIST) == 1  # only the one reading
    job.refresh_from_db()
    assert job.submission_state == SubmissionState.UNCERTAIN


@pytest.mark.parametrize(("skew_minutes", "linked"), [(4, True), (6, False)])
def test_reconciling_allows_five_minutes_of_clock_skew(emulator, skew_minutes, linked):
    """TensorPix's clock behind ours by less than CLOCK_SKEW: its job is still ours."""
    (job,) = lost_submissions(emulator, 1)
    (remote,) = emulator.state.jobs.values()
    remote.created_at -= skew_minutes * 60

    services.submit_pending_jobs()

    job.refresh_from_db()
    assert job.submission_state == SubmissionState.SUBMITTED
    assert (job.tensorpix_id == remote.id) is linked
    # Past the tolerance the job cannot be told from an older one: it is sent again.
    assert requests_to(emulator, CREATE) == (0 if linked else 1)
