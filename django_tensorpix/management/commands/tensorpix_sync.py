"""``manage.py tensorpix_sync``: mirror a TensorPix account into the database.

Streams each kind page by page (one page in memory at a time) and, once a kind's listing
is complete, flags the rows TensorPix no longer returns. Exits non-zero with a message that
says what to fix when the key is refused or TensorPix cannot be reached; the key itself is
never printed.
"""

from __future__ import annotations

from argparse import ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_tensorpix.client import TensorPixClient
from django_tensorpix.conf import DEFAULT_ACCOUNT
from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    MalformedPayload,
    MalformedResponse,
    TransientError,
)
from django_tensorpix.sync import SYNC_KINDS, SyncResult, sync_full_listing, sync_pages

ERASE_LINE = "\r\x1b[2K"
# Catalogue and inputs first, jobs last: a job's nested copies then refresh the others.
ORDER = ("ml-models", "videos", "restored-videos", "jobs")


class Command(BaseCommand):
    help = "Copy TensorPix jobs, videos, restored videos and ML models into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "kinds",
            nargs="*",
            type=kind_name,
            metavar="KIND",
            help=f"What to sync, among {', '.join(ORDER)} (default: everything).",
        )
        parser.add_argument(
            "--account",
            default=DEFAULT_ACCOUNT,
            help="Alias of the account in settings.TENSORPIX (default: %(default)s).",
        )
        parser.add_argument(
            "--no-mark-missing",
            action="store_true",
            help="Do not flag rows that TensorPix no longer returns.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        kinds = [kind for kind in ORDER if kind in (options["kinds"] or ORDER)]
        account = options["account"]
        try:
            client = TensorPixClient.for_account(account)
        except ConfigurationError as error:
            raise CommandError(str(error)) from None
        with client:
            for kind in kinds:
                result = self.sync_kind(client, kind, account, not options["no_mark_missing"])
                self.stdout.write(f"{kind}: {describe(result)}")
                for skipped in result.skipped:
                    self.stderr.write(f"{kind}: skipped {skipped.reason}")

    def sync_kind(
        self, client: TensorPixClient, kind: str, account: str, mark_missing: bool
    ) -> SyncResult:
        show_progress = self.stdout.isatty()

        def progress(result: SyncResult) -> None:
            if show_progress:
                bar = progress_bar(result.seen, result.expected)
                self.stdout.write(f"\r{kind}: {bar}", ending="")
                self.stdout.flush()

        try:
            if mark_missing:
                result = sync_full_listing(kind, client, on_page=progress)
            else:
                pages = SYNC_KINDS[kind].list_pages(client)
                result = sync_pages(kind, pages, account=account, on_page=progress)
        except AuthenticationError as error:
            raise CommandError(
                f"TensorPix refused the API key of account {account!r} ({error.status}). "
                "Check TENSORPIX['API_KEY'] (or ACCOUNTS) and that the plan allows API access."
            ) from None
        except TransientError as error:
            raise CommandError(
                f"TensorPix could not be reached while syncing {kind} of account "
                f"{account!r}: {error}"
            ) from None
        except (APIError, MalformedResponse, MalformedPayload) as error:
            raise CommandError(f"Syncing {kind} of account {account!r} failed: {error}") from None
        finally:
            if show_progress:
                self.stdout.write(ERASE_LINE, ending="")
        return result


def kind_name(value: str) -> str:
    # A type rather than ``choices``: argparse checks an empty ``nargs="*"`` against choices.
    if value not in ORDER:
        raise ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(ORDER)})")
    return value


def progress_bar(done: int, total: int | None, width: int = 30) -> str:
    """``[#######-----------]  1,200 / 5,000`` or, without a total, ``1,200 synced…``."""
    if not total:
        return f"{done:,} synced…"
    filled = min(width, width * done // total)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done:,} / {total:,}"


def describe(result: SyncResult) -> str:
    parts = [
        f"{result.created} created",
        f"{result.changed} changed",
        f"{result.unchanged} unchanged",
    ]
    if result.stale:
        parts.append(f"{result.stale} stale (ignored)")
    if result.skipped:
        parts.append(f"{len(result.skipped)} skipped (malformed)")
    parts.append(f"{result.missing} newly missing")
    return ", ".join(parts)
