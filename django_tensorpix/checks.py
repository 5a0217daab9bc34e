"""System checks for the ``TENSORPIX`` setting. Ids are stable: hosts may silence them.

A missing API key is reported by ``check --deploy`` only (tensorpix.E001): commands that
never call TensorPix (``migrate``, ``collectstatic``, a test run) must work in CI and
Docker builds before a key exists. Code that calls TensorPix without a key fails loudly
anyway: building a client raises :class:`~django_tensorpix.exceptions.ConfigurationError`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from django_tensorpix.conf import (
    DEFAULT_ACCOUNT,
    DEFAULTS,
    POLL_POSITIVE_NUMBERS,
    POSITIVE_NUMBERS,
    api_key_problem,
    tensorpix_settings,
)

HINT_SETTINGS = "See the settings reference in django-tensorpix's README."
# Plain http is fine for an emulator on this machine, never for a remote host.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@register(Tags.compatibility)
def check_tensorpix_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user_settings = getattr(settings, "TENSORPIX", None)
    if user_settings is not None and not isinstance(user_settings, dict):
        return [
            Error(
                "settings.TENSORPIX must be a dict.",
                hint=HINT_SETTINGS,
                id="tensorpix.E002",
            )
        ]
    messages: list[CheckMessage] = []
    for key in tensorpix_settings.unknown_keys():
        messages.append(
            Error(
                f"Unknown key {key!r} in settings.TENSORPIX.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="tensorpix.E003",
            )
        )
    messages += _check_numbers()
    messages += _check_archive_storage()
    messages += _check_polling()
    messages += _check_api_permissions()
    accounts_setting = tensorpix_settings.ACCOUNTS
    if not isinstance(accounts_setting, dict) or not all(
        isinstance(options, dict) for options in accounts_setting.values()
    ):
        messages.append(
            Error(
                'TENSORPIX["ACCOUNTS"] must map aliases to dicts with API_KEY and BASE_URL.',
                hint=HINT_SETTINGS,
                id="tensorpix.E006",
            )
        )
        return messages
    messages += _check_accounts()
    return messages


def _check_numbers() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for key in POSITIVE_NUMBERS:
        value = getattr(tensorpix_settings, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            messages.append(
                Error(
                    f'TENSORPIX["{key}"] must be a positive number, not {value!r}.',
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id="tensorpix.E004",
                )
            )
    retries = tensorpix_settings.MAX_RETRIES
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        messages.append(
            Error(
                f'TENSORPIX["MAX_RETRIES"] must be a whole number ≥ 0, not {retries!r}.',
                hint=f"The default is {DEFAULTS['MAX_RETRIES']!r}.",
                id="tensorpix.E004",
            )
        )
    return messages


def _check_archive_storage() -> list[CheckMessage]:
    alias = tensorpix_settings.ARCHIVE_STORAGE
    if alias in settings.STORAGES:
        return []
    return [
        Error(
            f'TENSORPIX["ARCHIVE_STORAGE"] names the storage {alias!r}, '
            "which settings.STORAGES does not define.",
            hint=f"Defined storages: {', '.join(sorted(settings.STORAGES))}.",
            id="tensorpix.E008",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_tensorpix_api_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """tensorpix.E001, for ``check --deploy``: every account needs an API key."""
    if not _accounts_setting_is_valid():
        return []
    messages: list[CheckMessage] = []
    for alias, account in tensorpix_settings.accounts.items():
        if account.api_key:
            continue
        if alias == DEFAULT_ACCOUNT:
            hint = 'Set TENSORPIX["API_KEY"] or the TENSORPIX_API_KEY environment variable.'
            message = "No TensorPix API key for the default account."
        else:
            hint = f'Set TENSORPIX["ACCOUNTS"]["{alias}"]["API_KEY"].'
            message = f"No TensorPix API key for account {alias!r}."
        messages.append(Error(message, hint=hint, id="tensorpix.E001"))
    return messages


def _accounts_setting_is_valid() -> bool:
    user_settings = getattr(settings, "TENSORPIX", None)
    if user_settings is not None and not isinstance(user_settings, dict):
        return False
    accounts_setting = tensorpix_settings.ACCOUNTS
    return isinstance(accounts_setting, dict) and all(
        isinstance(options, dict) for options in accounts_setting.values()
    )


def _check_accounts() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    user_settings = tensorpix_settings.user_settings
    raw_keys = {DEFAULT_ACCOUNT: user_settings.get("API_KEY") or ""} | {
        alias: (options or {}).get("API_KEY") or ""
        for alias, options in (tensorpix_settings.ACCOUNTS or {}).items()
    }
    for alias, account in tensorpix_settings.accounts.items():
        problem = api_key_problem(account.api_key) if account.api_key else None
        if problem is not None:
            # Never the key itself: check output lands in CI logs.
            messages.append(
                Error(
                    f"The TensorPix API key of account {alias!r} {problem}.",
                    hint="Copy the key again from TensorPix (Settings → For Developers).",
                    id="tensorpix.E009",
                )
            )
        elif str(raw_keys.get(alias, "")) != account.api_key and raw_keys.get(alias):
            messages.append(
                Warning(
                    f"The TensorPix API key of account {alias!r} has surrounding whitespace "
                    "(often a trailing newline from a file); it is stripped.",
                    hint="Remove the whitespace where the key is set.",
                    id="tensorpix.W001",
                )
            )
        url = urlsplit(account.base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            messages.append(
                Error(
                    f"The base URL of TensorPix account {alias!r} is not an http(s) URL: "
                    f"{account.base_url!r}.",
                    hint="Use https://backend.tensorpix.ai or your emulator's address.",
                    id="tensorpix.E005",
                )
            )
        elif url.scheme == "http" and not settings.DEBUG and url.hostname not in LOOPBACK:
            messages.append(
                Error(
                    f"TensorPix account {alias!r} would send its API key over plain http "
                    f"to {url.hostname}.",
                    hint="Use https outside DEBUG; plain http is meant for a local emulator.",
                    id="tensorpix.E007",
                )
            )
    return messages


def _is_real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _check_polling() -> list[CheckMessage]:
    """The polling settings (tensorpix.E020-E025): each one a number that makes sense."""
    messages: list[CheckMessage] = []
    bad = set()
    for key in POLL_POSITIVE_NUMBERS:
        value = getattr(tensorpix_settings, key)
        if not _is_real(value) or value <= 0:
            bad.add(key)
            messages.append(
                Error(
                    f'TENSORPIX["{key}"] must be a positive number, not {value!r}.',
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id="tensorpix.E020",
                )
            )
    if isinstance(tensorpix_settings.POLL_BATCH_SIZE, float):
        messages.append(
            Error(
                'TENSORPIX["POLL_BATCH_SIZE"] must be a whole number.',
                hint=f"The default is {DEFAULTS['POLL_BATCH_SIZE']!r}.",
                id="tensorpix.E020",
            )
        )
    jitter = tensorpix_settings.POLL_JITTER
    if not _is_real(jitter) or not 0 <= jitter < 1:
        messages.append(
            Error(
                f'TENSORPIX["POLL_JITTER"] must be a fraction from 0 to below 1, not {jitter!r}.',
                hint="0.1 spreads each wait by ±10 %.",
                id="tensorpix.E021",
            )
        )
    floor, ceiling = tensorpix_settings.POLL_MIN_INTERVAL, tensorpix_settings.POLL_MAX_INTERVAL
    if not {"POLL_MIN_INTERVAL", "POLL_MAX_INTERVAL"} & bad and floor > ceiling:
        messages.append(
            Error(
                f'TENSORPIX["POLL_MIN_INTERVAL"] ({floor!r}) is above '
                f'TENSORPIX["POLL_MAX_INTERVAL"] ({ceiling!r}).',
                hint="The floor of the polling interval must not exceed its ceiling.",
                id="tensorpix.E022",
            )
        )
    lease = tensorpix_settings.POLL_LEASE
    timeouts = (tensorpix_settings.CONNECT_TIMEOUT, tensorpix_settings.READ_TIMEOUT)
    request_time = sum(timeouts) if all(_is_real(value) for value in timeouts) else 0
    if "POLL_LEASE" not in bad and lease <= request_time:
        messages.append(
            Error(
                f'TENSORPIX["POLL_LEASE"] ({lease!r} s) does not outlast one request '
                f"(CONNECT_TIMEOUT + READ_TIMEOUT = {request_time!r} s).",
                hint="A lease that runs out mid-refresh lets a second worker poll the same "
                "jobs; make it several times the request timeouts.",
                id="tensorpix.E023",
            )
        )
    stall_after = tensorpix_settings.POLL_STALL_AFTER
    if not {"POLL_STALL_AFTER", "POLL_MAX_INTERVAL"} & bad and stall_after <= ceiling:
        messages.append(
            Error(
                f'TENSORPIX["POLL_STALL_AFTER"] ({stall_after!r} s) must exceed '
                f'TENSORPIX["POLL_MAX_INTERVAL"] ({ceiling!r} s).',
                hint="A job is stalled after hours, not after one polling interval.",
                id="tensorpix.E024",
            )
        )
    return messages


# Submission settings (issue 10): tensorpix.E030-E039, W030-W039.
SUBMISSION_FLAGS = ("DELETE_LOCAL_AFTER_UPLOAD", "ARCHIVE_OUTPUTS", "DELETE_REMOTE_AFTER_ARCHIVE")
SUBMISSION_DELAYS = ("SUBMIT_GRACE_PERIOD", "RECONCILE_DELAY")
CREDITS_LOW_ACTIONS = ("refuse", "warn")


@register(Tags.compatibility)
def check_submission_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not isinstance(getattr(settings, "TENSORPIX", None) or {}, dict):
        return []  # tensorpix.E002 says it
    messages: list[CheckMessage] = []
    alias = tensorpix_settings.UPLOAD_STORAGE
    if alias not in settings.STORAGES:
        messages.append(
            Error(
                f'TENSORPIX["UPLOAD_STORAGE"] names the storage {alias!r}, '
                "which settings.STORAGES does not define.",
                hint=f"Defined storages: {', '.join(sorted(settings.STORAGES))}.",
                id="tensorpix.E030",
            )
        )
    action = tensorpix_settings.CREDITS_LOW_ACTION
    if action not in CREDITS_LOW_ACTIONS:
        messages.append(
            Error(
                f'TENSORPIX["CREDITS_LOW_ACTION"] must be "refuse" or "warn", not {action!r}.',
                id="tensorpix.E031",
            )
        )
    if not _is_credits_amount(tensorpix_settings.CREDITS_MIN_BALANCE):
        messages.append(
            Error(
                'TENSORPIX["CREDITS_MIN_BALANCE"] must be None or a number of Credits ≥ 0, '
                f"not {tensorpix_settings.CREDITS_MIN_BALANCE!r}.",
                hint='A string such as "50" keeps it exact.',
                id="tensorpix.E032",
            )
        )
    for key in SUBMISSION_DELAYS:
        if not _is_number(getattr(tensorpix_settings, key), minimum=0):
            messages.append(
                Error(
                    f'TENSORPIX["{key}"] must be a number of seconds ≥ 0.',
                    hint=f"The default is {DEFAULTS[key]!r}.",
                    id="tensorpix.E033",
                )
            )
    lease = tensorpix_settings.SUBMIT_LEASE
    request_time = _request_time()
    if not _is_number(lease, minimum=0) or (request_time is not None and lease <= request_time):
        messages.append(
            Error(
                f'TENSORPIX["SUBMIT_LEASE"] ({lease!r}) must be a number of seconds longer '
                "than CONNECT_TIMEOUT + RESPONSE_TIMEOUT: a create request must end while "
                "its worker holds the source.",
                hint=f"The default is {DEFAULTS['SUBMIT_LEASE']!r}.",
                id="tensorpix.E034",
            )
        )
    pages = tensorpix_settings.RECONCILE_MAX_PAGES
    if isinstance(pages, bool) or not isinstance(pages, int) or pages < 1:
        messages.append(
            Error(
                f'TENSORPIX["RECONCILE_MAX_PAGES"] must be a whole number ≥ 1, not {pages!r}.',
                id="tensorpix.E035",
            )
        )
    messages += [
        Error(f'TENSORPIX["{key}"] must be True or False.', id="tensorpix.E036")
        for key in SUBMISSION_FLAGS
        if not isinstance(getattr(tensorpix_settings, key), bool)
    ]
    delay = tensorpix_settings.RECONCILE_DELAY
    if request_time is not None and _is_number(delay, minimum=0) and delay < request_time:
        messages.append(
            Warning(
                f'TENSORPIX["RECONCILE_DELAY"] ({delay}s) is shorter than CONNECT_TIMEOUT + '
                f"RESPONSE_TIMEOUT ({request_time}s): a create request still under way at "
                "TensorPix could be missed, and the job sent twice.",
                id="tensorpix.W030",
            )
        )
    return messages


def _is_number(value: Any, *, minimum: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value >= minimum


def _is_credits_amount(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return False
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return False
    return amount.is_finite() and amount >= 0


def _request_time() -> float | None:
    """The longest one request may last: connecting, then its whole response."""
    connect = tensorpix_settings.CONNECT_TIMEOUT
    responses = (tensorpix_settings.READ_TIMEOUT, tensorpix_settings.RESPONSE_TIMEOUT)
    if all(_is_number(value, minimum=0) for value in (connect, *responses)):
        return float(connect + max(responses))
    return None


def _check_api_permissions() -> list[CheckMessage]:
    """tensorpix.E040: ``API_PERMISSION_CLASSES`` lists importable permission classes."""
    paths = tensorpix_settings.API_PERMISSION_CLASSES
    if isinstance(paths, str) or not isinstance(paths, list | tuple):
        paths = [paths]
    messages: list[CheckMessage] = []
    for path in paths:
        try:
            import_string(path)
        except (ImportError, TypeError, ValueError) as error:
            messages.append(
                Error(
                    f'TENSORPIX["API_PERMISSION_CLASSES"] lists {path!r}, which cannot be '
                    f"imported: {error}",
                    hint="Give a list of dotted paths to DRF permission classes.",
                    id="tensorpix.E040",
                )
            )
    return messages


# Admin settings (issue 12): tensorpix.E050-.


@register(Tags.compatibility)
def check_admin_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """tensorpix.E050: ``ADMIN_RUN_INLINE`` is an on/off switch (a string "False" is true)."""
    if not isinstance(getattr(settings, "TENSORPIX", None) or {}, dict):
        return []  # tensorpix.E002 says it
    if isinstance(tensorpix_settings.ADMIN_RUN_INLINE, bool):
        return []
    return [Error('TENSORPIX["ADMIN_RUN_INLINE"] must be True or False.', id="tensorpix.E050")]
