"""The example project's Celery app: ``celery -A example worker -B`` (worker with beat).

Settings prefixed ``CELERY_`` in settings.py configure it; django-tensorpix's tasks are
found by ``autodiscover_tasks``.
"""

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def add_tensorpix_schedule(sender: Celery, **kwargs: Any) -> None:
    """Beat's periodic re-drive of stalled submissions."""
    # Imported here: django_tensorpix.tasks imports models, not ready when this loads.
    from django_tensorpix.tasks import SUBMISSION_BEAT_SCHEDULE

    sender.conf.beat_schedule = {**sender.conf.beat_schedule, **SUBMISSION_BEAT_SCHEDULE}
