"""The Celery app of the test suite's worker processes (``celery -A tests.polling_celery_app``).

When ``TENSORPIX_POLL_TEST_SIGNALS_KEY`` is set, every job signal a worker sends is
appended to a Redis list of that name, one JSON entry per dispatch (event id, signal,
job, old and new value, process id), so a test in another process can check that each
transition was dispatched, and which process sent each copy; ``<name>:ready`` holds the
workers that are consuming.

The chaos test (tests/test_chaos.py) also uses:

* ``<name>:stall``: a process id. That worker, when next sending ``job_status_changed``,
  records it, writes the event id to ``<name>:stalled`` and hangs, so that the test can
  SIGKILL it mid-dispatch (its event's other signals and ``dispatched_at`` never happen).
* ``TENSORPIX_TEST_PUBLISHED``: a file each published task message (headers and body)
  is appended to, to be scanned for the API key.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests_polling")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_tensorpix"])

SIGNALS_KEY = os.environ.get("TENSORPIX_POLL_TEST_SIGNALS_KEY")
# Where the dispatches go; by default the broker (the chaos test restarts its broker, so
# it keeps them in the suite's Redis instead).
SIGNALS_URL = os.environ.get("TENSORPIX_POLL_TEST_SIGNALS_URL")
PUBLISHED = os.environ.get("TENSORPIX_TEST_PUBLISHED")
SIGNAL_NAMES = ("job_status_changed", "job_finished", "job_failed", "job_canceled")


def dispatch_entry(signal: str, event: Any, job: Any) -> str:
    """One dispatch as recorded: what a receiver was told, and by which process."""
    return json.dumps(
        {
            "event": event.pk,
            "signal": signal,
            "job": job.pk,
            "old": event.old_value,
            "new": event.new_value,
            "pid": os.getpid(),
        }
    )


def _record_dispatches() -> None:
    import redis
    from django.conf import settings

    from django_tensorpix import signals

    connection = redis.Redis.from_url(SIGNALS_URL or settings.CELERY_BROKER_URL)

    for name in SIGNAL_NAMES:

        def receiver(sender: Any, event: Any, job: Any, _name: str = name, **kwargs: Any) -> None:
            connection.rpush(str(SIGNALS_KEY), dispatch_entry(_name, event, job))
            if (
                _name == "job_status_changed"
                and connection.get(f"{SIGNALS_KEY}:stall") == str(os.getpid()).encode()
            ):
                connection.set(f"{SIGNALS_KEY}:stalled", str(event.pk))
                time.sleep(600)  # until the test SIGKILLs this process

        getattr(signals, name).connect(receiver, weak=False)


if SIGNALS_KEY:
    from celery.signals import worker_init, worker_ready

    @worker_init.connect
    def _on_worker_init(**kwargs: Any) -> None:
        _record_dispatches()

    @worker_ready.connect
    def _on_worker_ready(sender: Any, **kwargs: Any) -> None:
        import redis
        from django.conf import settings

        with redis.Redis.from_url(SIGNALS_URL or settings.CELERY_BROKER_URL) as connection:
            connection.sadd(f"{SIGNALS_KEY}:ready", str(sender.hostname))


def record_published(path: str, headers: Any, body: Any) -> None:
    """Append one published task message to ``path`` (a line of JSON)."""
    line = json.dumps({"pid": os.getpid(), "headers": repr(headers), "body": repr(body)})
    with open(path, "a", encoding="utf-8") as output:
        output.write(line + "\n")


if PUBLISHED:
    from celery.signals import before_task_publish

    @before_task_publish.connect(weak=False)
    def _on_publish(headers: Any = None, body: Any = None, **kwargs: Any) -> None:
        record_published(str(PUBLISHED), headers, body)
