"""The Celery app of the tests that run a real worker (tests/test_submission_delivery.py).

Broker and queue come from the environment, so each run uses its own queue on the Redis
database of its choice; the worker process gets the same values from the test.
"""

from __future__ import annotations

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_tensorpix.tasks import SUBMISSION_BEAT_SCHEDULE  # noqa: E402 (needs the setup)

BROKER_URL = os.environ.get("TENSORPIX_TEST_BROKER", "redis://127.0.0.1:6379/10")
QUEUE = os.environ.get("TENSORPIX_TEST_QUEUE", "tensorpix-tests")
SWEEP_SECONDS = float(os.environ.get("TENSORPIX_TEST_SWEEP", "1"))

app = Celery("django_tensorpix_tests")
app.conf.update(
    broker_url=BROKER_URL,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    imports=["django_tensorpix.tasks"],
    beat_schedule={
        name: {**entry, "schedule": SWEEP_SECONDS, "options": {"expires": SWEEP_SECONDS}}
        for name, entry in SUBMISSION_BEAT_SCHEDULE.items()
    },
)
