"""The example project's Celery app: ``celery -A example worker -B`` from example_project/.

Settings come from Django's, prefixed ``CELERY_`` (the broker is ``CELERY_BROKER_URL``,
the local Redis by default); django-tensorpix's tasks are found by autodiscovery and
``CELERY_BEAT_SCHEDULE`` runs its polling sweep every two seconds.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
