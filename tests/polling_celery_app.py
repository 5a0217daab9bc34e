"""The Celery app of the test suite's worker processes (``celery -A tests.polling_celery_app``).

When ``TENSORPIX_POLL_TEST_SIGNALS_KEY`` is set, every job signal a worker sends is counted in
a Redis hash of that name (``<event id>:<signal>``), so a test in another process can
check that each transition was dispatched exactly once; ``<name>:pids`` counts them per
worker process, and ``<name>:ready`` holds the workers that are consuming.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests_polling")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_tensorpix"])

SIGNALS_KEY = os.environ.get("TENSORPIX_POLL_TEST_SIGNALS_KEY")
# Where the counts go; by default the broker (the chaos test restarts its broker, so it
# keeps the counts in the suite's Redis instead).
SIGNALS_URL = os.environ.get("TENSORPIX_POLL_TEST_SIGNALS_URL")


def _count_signals() -> None:
    import redis
    from django.conf import settings

    from django_tensorpix import signals

    connection = redis.Redis.from_url(SIGNALS_URL or settings.CELERY_BROKER_URL)

    names = ("job_status_changed", "job_finished", "job_failed", "job_canceled")
    for name in names:

        def receiver(sender: Any, event: Any, _name: str = name, **kwargs: Any) -> None:
            connection.hincrby(str(SIGNALS_KEY), f"{event.pk}:{_name}", 1)
            connection.hincrby(f"{SIGNALS_KEY}:pids", str(os.getpid()), 1)

        getattr(signals, name).connect(receiver, weak=False)


if SIGNALS_KEY:
    from celery.signals import worker_init, worker_ready

    @worker_init.connect
    def _on_worker_init(**kwargs: Any) -> None:
        _count_signals()

    @worker_ready.connect
    def _on_worker_ready(sender: Any, **kwargs: Any) -> None:
        import redis
        from django.conf import settings

        with redis.Redis.from_url(SIGNALS_URL or settings.CELERY_BROKER_URL) as connection:
            connection.sadd(f"{SIGNALS_KEY}:ready", str(sender.hostname))
