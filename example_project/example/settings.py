"""Settings of the django-tensorpix example project.

Everything that differs between machines comes from the environment:
DATABASE_URL (default: db.sqlite3 next to manage.py, so it runs with nothing installed),
CELERY_BROKER_URL (default: the local Redis; ``filesystem://`` with CELERY_BROKER_FOLDER
is the demo's embedded broker) and TENSORPIX_API_KEY / TENSORPIX_BASE_URL,
which django-tensorpix reads itself when ``TENSORPIX`` leaves them empty.
"""

import os
from pathlib import Path

import dj_database_url

from django_tensorpix.schedules import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_tensorpix",
    "example",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A Celery worker, beat and runserver share one SQLite file: without WAL, a busy
    # timeout and immediate transactions they fail with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "media/"
# The example's receivers e-mail a job's owner when it finishes: printed, not sent.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"example": {"level": "INFO", "handlers": ["console"]}},
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# The demo's queue is its own (CELERY_TASK_DEFAULT_QUEUE), so that a shared Redis never
# hands its tasks to another project's worker.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker the demo falls back to when no Redis is around: kombu's
    # filesystem transport, messages as files in one folder (CELERY_BROKER_FOLDER).
    _broker_folder = os.environ.get("CELERY_BROKER_FOLDER", str(BASE_DIR / ".broker"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _broker_folder,
        "data_folder_out": _broker_folder,
        "control_folder": _broker_folder,
        "polling_interval": 0.2,
    }
# django-tensorpix's polling sweep every 2 s and a full sync every 6 h: with this,
# `celery -A example worker -B` keeps every job in sync.
CELERY_BEAT_SCHEDULE = beat_schedule()

TENSORPIX: dict[str, object] = {
    # API_KEY and BASE_URL come from TENSORPIX_API_KEY / TENSORPIX_BASE_URL.
}
if os.environ.get("EXAMPLE_FAST_POLLING") == "1":
    # The demo runs the emulator's clock many times faster than real time, while polling
    # intervals are real seconds: poll often enough to keep pace.
    TENSORPIX.update(POLL_QUEUED_INTERVAL=1.0, POLL_MIN_INTERVAL=0.5, POLL_MAX_INTERVAL=2.0)

# The REST API at /api/tensorpix/, its OpenAPI schema at /api/schema/ and docs at /api/docs/.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "tensorpix_job_create": "30/hour",
        "tensorpix_video_upload": "30/hour",
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-tensorpix example",
    "DESCRIPTION": "TensorPix jobs and videos of this project, mirrored by django-tensorpix.",
    "VERSION": "1.0.0",
}
