"""The API key never leaks: a recognisable key, a workload with faults, then a scan.

The workload runs what a production day brings: submissions whose answers are lost or
refused, polling through 5xx, resets, truncated JSON and 429s, a finished job archived
(its presigned URL fetched), and a key TensorPix refuses. Then everything a user or an
attacker might read is scanned for either key: every log record at DEBUG (message,
arguments, exception text), every exception's text and traceback, Celery task arguments
and results, and every row the app wrote (``remote_data``, ``last_sync_error``,
``last_submission_error``, the event history included). Presigned URLs may appear in
DEBUG records only.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.core import serializers

from django_tensorpix import polling, services, tasks
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobStatus
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job
from django_tensorpix.testing import TensorPixEmulator

pytestmark = pytest.mark.django_db

KEY = "tpx-LEAKCANARY-3f9a27c1d8e64b05"
REFUSED_KEY = "tpx-REFUSEDCANARY-77d1e0a9b2c4"
URL = "https://media.example.com/clips/holiday_720p.mp4"
UPSCALE_2X = 1


@pytest.fixture
def emulator(settings: Any, tmp_path: Any) -> Iterator[TensorPixEmulator]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with TensorPixEmulator(api_key=KEY, seed=14) as server:
        settings.TENSORPIX = {
            **settings.TENSORPIX,
            "API_KEY": KEY,
            "BASE_URL": server.base_url,
            "RECONCILE_DELAY": 0,
        }
        tensorpix_settings.reload()
        yield server


class Evidence:
    """Everything the workload produced that someone other than the key's owner may read."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def exception(self, error: BaseException) -> None:
        self.texts += [str(error), repr(error), *traceback.format_exception(error)]
        self.texts += [repr(vars(error))] if hasattr(error, "__dict__") else []

    def task(self, task: Any, *args: Any) -> None:
        """Run a Celery task eagerly, as a worker would, and keep its arguments and result."""
        result = task.apply(args=args)
        self.texts += [repr(args), repr(result.result), str(result.traceback or "")]


def run_workload(emulator: TensorPixEmulator, evidence: Evidence, settings: Any) -> None:
    # A submission whose answer is lost, reconciled by the task; one refused; one 500.
    emulator.inject("POST /api/jobs/from-url/", "lost_response")
    lost = services.enhance_from_url(URL, [UPSCALE_2X], crf=20)
    evidence.task(tasks.submit_job, lost.pk)
    evidence.task(tasks.submit_job, lost.pk)
    emulator.inject("POST /api/jobs/from-url/", "error", status=500)
    failing = services.enhance_from_url(URL.replace("holiday", "party"), [UPSCALE_2X])
    evidence.task(tasks.submit_job, failing.pk)
    evidence.task(tasks.submit_pending_jobs)
    emulator.balance = Decimal(0)
    refused = services.enhance_from_url(URL.replace("holiday", "work"), [UPSCALE_2X])
    evidence.task(tasks.submit_job, refused.pk)
    emulator.balance = Decimal(1000)

    # Polling through every kind of fault, then to the end.
    route = "GET /api/jobs/{id}/"
    for kind, extra in [
        ("error", {"status": 503}),
        ("reset", {}),
        ("truncated", {}),
        ("rate_limit", {"retry_after": 1}),
    ]:
        emulator.inject(route, kind, times=10, **extra)
        for job in Job.objects.exclude(tensorpix_id=None):
            try:
                polling.refresh_job(job)
            except TensorPixError as error:
                evidence.exception(error)
        emulator.clear_faults()
    emulator.advance(3600)
    time.sleep(1.1)  # the 429's pause of the account (Retry-After: 1) runs out
    Job.objects.update(next_poll_at=None)
    evidence.task(tasks.poll_due_jobs)
    for job in Job.objects.exclude(tensorpix_id=None):
        polling.refresh_job(job)
    finished = Job.objects.filter(status=JobStatus.FINISHED)
    assert finished.exists(), "the workload should finish a job"
    for job in finished:
        evidence.texts.append(services.output_download_url(job))  # for the URL check below
        services.archive_output(job)

    # TensorPix refuses the key: every path that reports it.
    settings.TENSORPIX = {**settings.TENSORPIX, "API_KEY": REFUSED_KEY}
    tensorpix_settings.reload()
    Job.objects.update(next_poll_at=None)
    evidence.task(tasks.poll_due_jobs)
    for job in Job.objects.exclude(tensorpix_id=None)[:2]:
        try:
            polling.refresh_job(job)
        except TensorPixError as error:
            evidence.exception(error)
        try:
            services.cancel_job(job)
        except TensorPixError as error:
            evidence.exception(error)
    denied = services.enhance_from_url(URL.replace("holiday", "denied"), [UPSCALE_2X])
    evidence.task(tasks.submit_job, denied.pk)
    evidence.task(tasks.sync_all)


def stored_rows() -> str:
    """Every row of every django_tensorpix model, serialised."""
    models = apps.get_app_config("django_tensorpix").get_models()
    return "\n".join(
        serializers.serialize("json", model._default_manager.all()) for model in models
    )


def test_no_key_in_logs_exceptions_tasks_or_rows_after_a_faulty_workload(
    emulator: TensorPixEmulator, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    evidence = Evidence()

    run_workload(emulator, evidence, settings)

    records = caplog.records
    assert len(records) > 50, "the workload should have logged a lot at DEBUG"
    assert any(r.levelno >= logging.WARNING for r in records), "faults should have been logged"
    log_texts = []
    for record in records:
        log_texts.append(record.getMessage())
        log_texts.append(logging.Formatter().format(record))  # exception text included
    rows = stored_rows()
    assert "refused" in rows.lower() or "401" in rows, "the refused key should be on record"
    for key in (KEY, REFUSED_KEY):
        for name, texts in [("logs", log_texts), ("evidence", evidence.texts), ("rows", [rows])]:
            leaks = [text[:300] for text in texts if key in text]
            assert not leaks, f"{key} leaked in {name}: {leaks}"

    # Presigned URLs (their signatures) only at DEBUG.
    signed = [
        r.getMessage()
        for r in records
        if r.levelno > logging.DEBUG and "X-Signature" in logging.Formatter().format(r)
    ]
    assert signed == []
    assert any("X-Signature" in text for text in evidence.texts)
