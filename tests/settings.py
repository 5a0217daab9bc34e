"""Settings for the test suite.

DATABASE_URL picks the database (default: SQLite in memory); pytest-django creates
``test_<name>`` on PostgreSQL. The API key is a placeholder: tests that talk to the
emulator configure the account they need with ``override_settings``.
"""

import json
import os
from typing import Any

import dj_database_url

SECRET_KEY = "django-tensorpix-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # The admin's CSS for the browser test (tests/test_admin_browser.py).
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_tensorpix",
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "sqlite://:memory:"), conn_max_age=0
    )
}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

TENSORPIX = {
    "API_KEY": "test-key-not-secret",
    "BASE_URL": "http://127.0.0.1:9",
    # Tests exercise retries; keep their sleeps short.
    "RETRY_BACKOFF_BASE": 0.01,
    "RETRY_BACKOFF_MAX": 0.05,
    "RETRY_AFTER_MAX": 2.0,
    "CONNECT_TIMEOUT": 2.0,
    "READ_TIMEOUT": 5.0,
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_tensorpix": {"level": "DEBUG", "handlers": []}},
}

# Celery, for the polling tests that run real worker processes (tests/celery_app.py).
# Redis database 9 of the local server; each test run uses a queue of its own. The
# worker processes get the emulator's address, polling settings and the test database
# through the environment (TENSORPIX_POLL_TEST_SETTINGS is JSON merged over TENSORPIX).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TENSORPIX_POLL_TEST_QUEUE", "django-tensorpix-tests")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
if os.environ.get("TENSORPIX_POLL_TEST_SETTINGS"):
    TENSORPIX.update(json.loads(os.environ["TENSORPIX_POLL_TEST_SETTINGS"]))
if os.environ.get("TENSORPIX_POLL_TEST_BEAT_INTERVAL"):
    from django_tensorpix.schedules import beat_schedule

    CELERY_BEAT_SCHEDULE = beat_schedule(
        sweep_interval=float(os.environ["TENSORPIX_POLL_TEST_BEAT_INTERVAL"]),
        queue=CELERY_TASK_DEFAULT_QUEUE,
        full_sync_interval=None,
    )
# The chaos test (tests/test_chaos.py) also re-drives stalled submissions from beat.
# (The task's name is spelled out: settings cannot import django_tensorpix.tasks.)
if os.environ.get("TENSORPIX_POLL_TEST_SUBMIT_SWEEP"):
    CELERY_BEAT_SCHEDULE = {
        **globals().get("CELERY_BEAT_SCHEDULE", {}),
        "tensorpix-submit-pending-jobs": {
            "task": "django_tensorpix.submit_pending_jobs",
            "schedule": float(os.environ["TENSORPIX_POLL_TEST_SUBMIT_SWEEP"]),
            "options": {"queue": CELERY_TASK_DEFAULT_QUEUE, "expires": 1.0},
        },
    }

# The chaos test's workers store every task's result, its arguments included, in the
# test's private Redis, and write a DEBUG log each, for the API-key scan.
if os.environ.get("TENSORPIX_TEST_RESULT_BACKEND"):
    CELERY_RESULT_BACKEND = os.environ["TENSORPIX_TEST_RESULT_BACKEND"]
    CELERY_RESULT_EXTENDED = True
    # The package's tasks ignore their results; here every one is kept.
    CELERY_TASK_ANNOTATIONS = {"*": {"ignore_result": False}}
if os.environ.get("TENSORPIX_TEST_DEBUG_LOG"):
    LOGGING["handlers"]["debug_file"] = {
        "class": "logging.FileHandler",
        "filename": os.environ["TENSORPIX_TEST_DEBUG_LOG"],
        "level": "DEBUG",
    }
    LOGGING["loggers"] = {
        "django_tensorpix": {"level": "DEBUG", "handlers": ["debug_file"]},
        "celery": {"level": "DEBUG", "handlers": ["debug_file"]},
    }

# The REST API's tests: the host's pagination is used, the schema is drf-spectacular's.
REST_FRAMEWORK = {
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "tensorpix_job_create": "5/minute",
        "tensorpix_video_upload": "5/minute",
    },
}
