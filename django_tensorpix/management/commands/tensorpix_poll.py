"""``manage.py tensorpix_poll``: keep jobs in sync from a terminal, without Celery.

Runs the same sweep as the ``poll_due_jobs`` task, once (``--once``) or in a loop until
interrupted; ``--job`` follows one job (by its TensorPix id) until it is final. On a
terminal each job's line is redrawn in place with a progress bar; otherwise (a log, a
pipe) a plain line is printed whenever a job's status or progress changes.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_tensorpix import polling
from django_tensorpix.conf import DEFAULT_ACCOUNT
from django_tensorpix.exceptions import AuthenticationError, NotFound, TensorPixError
from django_tensorpix.models import Job
from django_tensorpix.schedules import SWEEP_INTERVAL

CURSOR_UP_LINES = "\x1b[{}F"
ERASE_LINE = "\x1b[2K"


class Command(BaseCommand):
    help = "Poll TensorPix for the jobs that are due (or one job) and keep the rows in sync."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="One sweep (or one poll), then exit."
        )
        parser.add_argument(
            "--job",
            type=int,
            metavar="ID",
            help="Follow this job (its TensorPix id) until it ends.",
        )
        parser.add_argument(
            "--account",
            default=DEFAULT_ACCOUNT,
            help="Account of --job in settings.TENSORPIX (default: %(default)s).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=SWEEP_INTERVAL,
            help="Seconds between sweeps (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.live = self.stdout.isatty()
        self.shown: dict[int, str] = {}
        self.drawn = 0
        try:
            if options["job"] is not None:
                self.follow(options["job"], options["account"], once=options["once"])
            else:
                self.sweep_loop(options["interval"], once=options["once"])
        except KeyboardInterrupt:
            self.stdout.write("")

    def follow(self, tensorpix_id: int, account: str, *, once: bool) -> None:
        job = Job.objects.filter(account=account, tensorpix_id=tensorpix_id).first()
        if job is None:
            raise CommandError(
                f"No job {tensorpix_id} of account {account!r} in the database; "
                "run manage.py tensorpix_sync jobs first."
            )
        while True:
            try:
                job = polling.refresh_job(job)
            except (NotFound, AuthenticationError) as error:
                raise CommandError(f"Polling job {tensorpix_id} stopped: {error}") from None
            except TensorPixError as error:
                self.stderr.write(f"Job {tensorpix_id}: {error} (retrying)")
                job.refresh_from_db()
            self.show([job])
            if once or job.is_terminal:
                return
            now = timezone.now()
            wait = (job.next_poll_at - now).total_seconds() if job.next_poll_at else SWEEP_INTERVAL
            time.sleep(max(wait, 0.1))

    def sweep_loop(self, interval: float, *, once: bool) -> None:
        while True:
            result = polling.poll_due_jobs()
            self.show(result.refreshed)
            if once:
                if not self.live:
                    self.stdout.write(
                        f"{result.claimed} due, {len(result.refreshed)} refreshed, "
                        f"{result.failed} failed, {result.requests} requests."
                    )
                return
            time.sleep(interval)

    def show(self, jobs: list[Job]) -> None:
        """Redraw every job's line on a terminal; print the lines that changed otherwise."""
        changed = []
        for job in jobs:
            line = describe(job, bar=self.live)
            if self.shown.get(job.pk) != line:
                self.shown[job.pk] = line
                changed.append(line)
        if not self.live:
            for line in changed:
                self.stdout.write(line)
            return
        if not changed:
            return
        if self.drawn:
            self.stdout.write(CURSOR_UP_LINES.format(self.drawn), ending="")
        for line in self.shown.values():
            self.stdout.write(f"{ERASE_LINE}{line}")
        self.drawn = len(self.shown)
        self.stdout.flush()


def describe(job: Job, *, bar: bool) -> str:
    """``Job 52001: Processing  45% (eta 120 s)``, with a progress bar on a terminal."""
    status = job.get_status_display() if job.status is not None else "unknown"
    text = f"Job {job.tensorpix_id}: {status}"
    progress = job.processing_progress
    if progress is not None and job.is_active:
        percent = f"{progress * 100:3.0f}%"
        if bar:
            filled = round(20 * min(max(progress, 0.0), 1.0))
            percent = f"[{'#' * filled}{'-' * (20 - filled)}] {percent}"
        text += f" {percent}"
        if job.eta_s is not None:
            text += f" (eta {job.eta_s:.0f} s)"
    if job.stalled_at is not None and job.is_active:
        text += " (stalled)"
    if job.last_sync_error:
        text += f" ! {job.last_sync_error}"
    return text
