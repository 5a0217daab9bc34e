"""The example project's Celery app: ``celery -A example worker -B`` (worker with beat).

Settings prefixed ``CELERY_`` in settings.py configure it; django-tensorpix's tasks are
found by ``autodiscover_tasks``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
