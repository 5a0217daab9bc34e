"""The example project's Celery app: ``celery -A example worker -B`` from example_project/.

Settings come from Django's, prefixed ``CELERY_`` (the broker is ``CELERY_BROKER_URL``,
the local Redis by default); django-tensorpix's tasks are found by autodiscovery and
``CELERY_BEAT_SCHEDULE`` runs its polling sweep every two seconds.
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
