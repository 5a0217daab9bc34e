"""Settings for django-tensorpix, read from one ``TENSORPIX`` dict in the host's settings.

Modelled on Django REST framework's ``api_settings``: defaults live in ``DEFAULTS`` below
(the one place each key is documented), values are read lazily, and the cache is dropped
when ``setting_changed`` fires so ``override_settings`` works in tests.

API keys are read from settings or the environment only; they are never stored in the
database and never shown in a ``repr``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_tensorpix.exceptions import ConfigurationError

DEFAULT_ACCOUNT = "default"
DEFAULT_BASE_URL = "https://backend.tensorpix.ai"

DEFAULTS: dict[str, Any] = {
    # The default account's API key ("Settings → For Developers" in the TensorPix web app).
    # Falls back to the TENSORPIX_API_KEY environment variable when empty.
    "API_KEY": "",
    # The default account's API root. Falls back to TENSORPIX_BASE_URL, then to
    # https://backend.tensorpix.ai.
    "BASE_URL": "",
    # Further accounts: {"alias": {"API_KEY": "...", "BASE_URL": "..."}}. BASE_URL is
    # optional and defaults to https://backend.tensorpix.ai.
    "ACCOUNTS": {},
    # Seconds to wait for a TCP connection to TensorPix, and for a response after it.
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 30.0,
    # How many times an idempotent request (GET, DELETE) is retried after a connection
    # error, a timeout, 502/503/504 or 429. POST is never retried: it could bill twice.
    "MAX_RETRIES": 4,
    # Exponential backoff between retries: BASE * 2**attempt, with full jitter, capped
    # at MAX. A 429's Retry-After is waited out when it is at most RETRY_AFTER_MAX;
    # a longer one is raised at once as RateLimited, carrying the wait.
    "RETRY_BACKOFF_BASE": 0.5,
    "RETRY_BACKOFF_MAX": 30.0,
    "RETRY_AFTER_MAX": 120.0,
    # Upload chunk size in bytes: an upload never holds more than this in memory.
    "UPLOAD_CHUNK_SIZE": 1024 * 1024,
    # Objects asked for per page when listing (limit for limit/offset, page_size for pages).
    "PAGE_SIZE": 100,
    # Alias in settings.STORAGES where finished outputs are archived, and the
    # upload_to pattern (strftime) of archived files inside it.
    "ARCHIVE_STORAGE": "default",
    "ARCHIVE_UPLOAD_TO": "tensorpix/%Y/%m/",
    # --- Hardening (issue 8): bounds on what one TensorPix answer may cost ---
    # Seconds reading one API response's body may take in all, from its headers to its
    # last byte (READ_TIMEOUT only bounds each wait on the socket, so a server dripping a
    # byte a second never hits it).
    "RESPONSE_TIMEOUT": 120.0,
    # Largest API response body read, in bytes after decompression; a larger one raises
    # ResponseTooLarge. A page of 100 jobs is a few hundred kilobytes.
    "MAX_RESPONSE_BYTES": 32 * 1024 * 1024,
    # -- Polling (django_tensorpix.polling, the Celery tasks and tensorpix_poll) ------
    # Seconds between polls of a job In Queue (or in a status this version does not know).
    "POLL_QUEUED_INTERVAL": 30.0,
    # Floor and ceiling, in seconds, of the wait between two polls of a Processing job,
    # which is otherwise a share of the time it is expected to need (eta_s, progress).
    "POLL_MIN_INTERVAL": 2.0,
    "POLL_MAX_INTERVAL": 300.0,
    # Random spread of every wait, as a fraction (0.1: ±10 %), so jobs started together
    # are not polled together forever.
    "POLL_JITTER": 0.1,
    # A job still active this many seconds after TensorPix started it is marked stalled
    # (an event and the job_stalled signal), then polled every POLL_STALLED_INTERVAL.
    "POLL_STALL_AFTER": 12 * 3600.0,
    "POLL_STALLED_INTERVAL": 3600.0,
    # Seconds a worker holds the jobs it claimed: a worker killed mid-refresh delays its
    # jobs by at most this. Must outlast a request (CONNECT_TIMEOUT + READ_TIMEOUT).
    "POLL_LEASE": 120.0,
    # Most jobs one sweep claims; the rest wait for the next sweep.
    "POLL_BATCH_SIZE": 500,
    # Per-job backoff after a failed poll: POLL_MIN_INTERVAL * 2**failures, capped here.
    "POLL_ERROR_BACKOFF_MAX": 900.0,
    # How long a whole account pauses after a 429 without Retry-After, and after
    # TensorPix refused its key (401/403).
    "POLL_RATE_LIMIT_PAUSE": 60.0,
    "POLL_AUTH_PAUSE": 900.0,
    # Submission (issue 10): creating, cancelling, archiving and deleting from Django.
    # Alias in settings.STORAGES keeping local copies of files to enhance (a Celery worker
    # uploads them from there after the web request ended), and their upload_to pattern.
    "UPLOAD_STORAGE": "default",
    "UPLOAD_UPLOAD_TO": "tensorpix/inputs/%Y/%m/",
    # Delete the local copy once TensorPix has the file (the Video row is kept).
    "DELETE_LOCAL_AFTER_UPLOAD": False,
    # Seconds after which the periodic submit_pending_jobs re-drives a job still pending
    # or submitting (its Celery message may have been lost, or its worker killed).
    "SUBMIT_GRACE_PERIOD": 120.0,
    # Seconds after a create request whose answer was lost before the job list is searched
    # for what it created; longer than CONNECT_TIMEOUT + RESPONSE_TIMEOUT, so the request
    # has surely ended.
    "RECONCILE_DELAY": 180.0,
    # Most pages of the job (or video) list read while reconciling; the list has no
    # documented order, so it is read whole. Past this, the job stays uncertain.
    "RECONCILE_MAX_PAGES": 50,
    # How long one worker may hold a source (a URL or an uploaded video) while submitting.
    "SUBMIT_LEASE": 300.0,
    # Credits balance below which a submission refuses (or warns, per CREDITS_LOW_ACTION)
    # and sends credits_low; None reads no balance.
    "CREDITS_MIN_BALANCE": None,
    # "refuse": the job ends rejected with a clear message; "warn": it is submitted anyway.
    "CREDITS_LOW_ACTION": "refuse",
    # Copy each finished output into ARCHIVE_STORAGE (a Celery task on job_finished;
    # jobs imported already finished are not archived automatically).
    "ARCHIVE_OUTPUTS": False,
    # After archiving, delete the output at TensorPix to free its storage quota.
    "DELETE_REMOTE_AFTER_ARCHIVE": False,
    # -- sync speed (issue 15) --
    # On PostgreSQL, write synced rows with statements of django_tensorpix.sync.postgres
    # (each page's rows as one JSON parameter) instead of Django's bulk_create. Same rows,
    # same signals; False uses bulk_create on every database.
    "SYNC_FAST_PATH": True,
    # --- REST API (django_tensorpix.api) ---
    # Import paths of the DRF permission classes of every API view. The default lets
    # users see and act on their own jobs and videos only, staff on all, and needs the
    # add_job (add_video) model permission to create a job (upload a video).
    "API_PERMISSION_CLASSES": ("django_tensorpix.api.permissions.IsOwnerOrStaff",),
    # Show the raw TensorPix payload of jobs, videos and outputs as local.remote_data.
    "API_EXPOSE_REMOTE_DATA": False,
    # Admin (issue 12).
    # When True, the admin's "Sync from TensorPix" button and "Archive output" action run
    # in the web request instead of as Celery tasks (for sites without a worker).
    "ADMIN_RUN_INLINE": False,
}

# Polling keys whose value must be a positive number, checked by tensorpix.E020.
POLL_POSITIVE_NUMBERS = (
    "POLL_QUEUED_INTERVAL",
    "POLL_MIN_INTERVAL",
    "POLL_MAX_INTERVAL",
    "POLL_STALL_AFTER",
    "POLL_STALLED_INTERVAL",
    "POLL_LEASE",
    "POLL_BATCH_SIZE",
    "POLL_ERROR_BACKOFF_MAX",
    "POLL_RATE_LIMIT_PAUSE",
    "POLL_AUTH_PAUSE",
)

# Keys whose value must be a positive number, checked by tensorpix.E004.
POSITIVE_NUMBERS = (
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "RETRY_BACKOFF_BASE",
    "RETRY_BACKOFF_MAX",
    "RETRY_AFTER_MAX",
    "UPLOAD_CHUNK_SIZE",
    "PAGE_SIZE",
    "RESPONSE_TIMEOUT",
    "MAX_RESPONSE_BYTES",
)


@dataclass(frozen=True)
class Account:
    """One TensorPix account: an alias, its key and its API root.

    The key is excluded from ``repr`` so that an account in a traceback, a log line or
    a Celery task's arguments never shows it.
    """

    alias: str
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        # Paths are appended to the base URL, so one form only: no trailing slash.
        object.__setattr__(self, "base_url", str(self.base_url).rstrip("/"))
        # A key pasted from a file or a secret store often ends with a newline, which
        # requests would refuse (quoting the whole key) when building the header.
        object.__setattr__(self, "api_key", str(self.api_key).strip())


def api_key_problem(api_key: str) -> str | None:
    """Why ``api_key`` cannot go in an ``Authorization`` header, or ``None`` if it can.

    Says what is wrong without quoting the key: the answer ends up in messages.
    """
    if not api_key:
        return "is empty"
    if any(char.isspace() for char in api_key):
        return "contains whitespace or a line break"
    if not all(33 <= ord(char) < 127 for char in api_key):
        return "contains control or non-ASCII characters"
    return None


class ImproperlyConfiguredAccount(ConfigurationError, LookupError):
    """Raised when code asks for an account that the settings do not define."""


class TensorPixSettings:
    """Lazy, cached view of ``settings.TENSORPIX`` merged over ``DEFAULTS``.

    The annotations below type the keys code reads; a number whose default is a float is
    returned as a float even when set as an int, so call sites never convert. Keys added
    to ``DEFAULTS`` without an annotation read fine too, typed ``Any``. Values are not
    validated here: the system checks report bad ones.
    """

    API_KEY: str
    BASE_URL: str
    ACCOUNTS: dict[str, dict[str, str]]
    CONNECT_TIMEOUT: float
    READ_TIMEOUT: float
    MAX_RETRIES: int
    RETRY_BACKOFF_BASE: float
    RETRY_BACKOFF_MAX: float
    RETRY_AFTER_MAX: float
    UPLOAD_CHUNK_SIZE: int
    PAGE_SIZE: int
    ARCHIVE_STORAGE: str
    ARCHIVE_UPLOAD_TO: str
    RESPONSE_TIMEOUT: float
    MAX_RESPONSE_BYTES: int
    POLL_QUEUED_INTERVAL: float
    POLL_MIN_INTERVAL: float
    POLL_MAX_INTERVAL: float
    POLL_JITTER: float
    POLL_STALL_AFTER: float
    POLL_STALLED_INTERVAL: float
    POLL_LEASE: float
    POLL_BATCH_SIZE: int
    POLL_ERROR_BACKOFF_MAX: float
    POLL_RATE_LIMIT_PAUSE: float
    POLL_AUTH_PAUSE: float
    UPLOAD_STORAGE: str
    UPLOAD_UPLOAD_TO: str
    DELETE_LOCAL_AFTER_UPLOAD: bool
    SUBMIT_GRACE_PERIOD: float
    RECONCILE_DELAY: float
    RECONCILE_MAX_PAGES: int
    SUBMIT_LEASE: float
    CREDITS_MIN_BALANCE: Decimal | float | int | None
    CREDITS_LOW_ACTION: str
    ARCHIVE_OUTPUTS: bool
    DELETE_REMOTE_AFTER_ARCHIVE: bool
    SYNC_FAST_PATH: bool
    API_PERMISSION_CLASSES: tuple[str, ...] | list[str]
    API_EXPOSE_REMOTE_DATA: bool
    ADMIN_RUN_INLINE: bool

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, "TENSORPIX", None) or {}
        return dict(value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Invalid TensorPix setting: {name!r}")
        if name not in self._cache:
            value = self.user_settings.get(name, DEFAULTS[name])
            if isinstance(DEFAULTS[name], float) and type(value) is int:
                value = float(value)
            self._cache[name] = value
        return self._cache[name]

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    @property
    def accounts(self) -> dict[str, Account]:
        """Every configured account by alias; ``"default"`` is always present.

        Not cached, so the environment fallback is read afresh each time.
        """
        default = Account(
            alias=DEFAULT_ACCOUNT,
            api_key=self.API_KEY or os.environ.get("TENSORPIX_API_KEY", ""),
            base_url=self.BASE_URL or os.environ.get("TENSORPIX_BASE_URL", "") or DEFAULT_BASE_URL,
        )
        accounts = {DEFAULT_ACCOUNT: default}
        for alias, options in (self.ACCOUNTS or {}).items():
            options = options or {}
            accounts[alias] = Account(
                alias=alias,
                api_key=options.get("API_KEY", ""),
                base_url=options.get("BASE_URL") or DEFAULT_BASE_URL,
            )
        return accounts

    def get_account(self, alias: str = DEFAULT_ACCOUNT) -> Account:
        try:
            return self.accounts[alias]
        except KeyError:
            known = ", ".join(sorted(self.accounts))
            raise ImproperlyConfiguredAccount(
                f"No TensorPix account named {alias!r} (configured: {known})."
            ) from None

    def reload(self) -> None:
        self._cache.clear()


tensorpix_settings = TensorPixSettings()


@receiver(setting_changed)
def _reload_tensorpix_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("TENSORPIX",):
        tensorpix_settings.reload()
