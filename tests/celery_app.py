"""The Celery app of the tests that run a real worker (tests/test_submission_delivery.py).

Broker and queue come from the environment, so each run uses its own queue on the Redis
database of its choice; the worker process gets the same values from the test.
"""

from __future__ import annotations

import os

from celery import Celery

from django_tensorpix.schedules import beat_schedule

BROKER_URL = os.environ.get("TENSORPIX_TEST_BROKER", "redis://127.0.0.1:6379/10")
QUEUE = os.environ.get("TENSORPIX_TEST_QUEUE", "tensorpix-tests")
SWEEP_SECONDS = float(os.environ.get("TENSORPIX_TEST_SWEEP", "1"))

# Not made the current app on import: the test that uses it makes it current, then restores.
app = Celery("django_tensorpix_tests", set_as_current=False)
app.conf.update(
    broker_url=BROKER_URL,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    imports=["django_tensorpix.tasks"],
    # The polling and submission sweeps, as a host runs them, every SWEEP_SECONDS.
    beat_schedule=beat_schedule(
        sweep_interval=SWEEP_SECONDS, full_sync_interval=None, submit_interval=SWEEP_SECONDS
    ),
)
