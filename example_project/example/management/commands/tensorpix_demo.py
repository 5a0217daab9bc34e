"""Submit the demo's jobs and show each one's progress until all have ended.

``scripts/demo.sh`` runs this once the emulator, the Celery worker and the server are up.
Jobs are created the way a host project creates them, with ``django_tensorpix.services``:
the rows are written here and the Celery worker submits them. They vary in source (a URL,
an uploaded file), AI filters and options; one is made to fail (the emulator fails any
job whose URL or file name contains "fail"), one is canceled once TensorPix has it
(``services.cancel_job``) and one has its output archived into the project's storage
(``services.archive_output``). The command exits non-zero unless every job reached the
state it was meant to, so the headless demo doubles as an end-to-end test.
``--summary FILE`` writes what happened as JSON.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_tensorpix import services
from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job

FINISHED, FAILED, CANCELED, ARCHIVED = "finished", "failed", "canceled", "archived"


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: one per job
class DemoJob:
    """One job of the demo: where its video comes from, what to do, and how it should end."""

    label: str
    source: str  # a URL, or the name of a file to upload
    ml_models: tuple[str, ...]  # AI filters, by name
    options: dict[str, Any] = field(default_factory=dict)
    expect: str = FINISHED

    @property
    def uploaded(self) -> bool:
        return "://" not in self.source


PLAN = (
    DemoJob(
        "Wedding film: 2x upscale + denoise, archived",
        "https://media.example.com/wedding-720p.mp4",
        ("200% AI Upscale", "AI Denoise"),
        {"codec": "libx265", "output_resolution": 2560},
        expect=ARCHIVED,
    ),
    DemoJob(
        "Holiday clip (uploaded): face enhance",
        "holiday-720p.mp4",
        ("Face Enhance",),
        {"container": "mov"},
    ),
    DemoJob(
        "VHS tape: prettify + deinterlace, first 600 frames",
        "https://media.example.com/family-vhs-480p.mp4",
        ("VHS Prettify", "Deinterlace"),
        {"start_frame": 0, "end_frame": 600},
    ),
    DemoJob(
        "Damaged reel: denoise (fails on purpose)",
        "https://media.example.com/fail-damaged-reel-720p.mp4",
        ("AI Denoise Strong",),
        expect=FAILED,
    ),
    DemoJob(
        "Drone shot: stabilization, canceled",
        "https://media.example.com/drone-1080p.mp4",
        ("AI Stabilization",),
        expect=CANCELED,
    ),
)

EXPECTED_STATUS = {
    FINISHED: JobStatus.FINISHED,
    ARCHIVED: JobStatus.FINISHED,
    FAILED: JobStatus.FAILED,
    CANCELED: JobStatus.CANCELED,
}


class Command(BaseCommand):
    help = "Submit the demo's jobs and show their progress until all have ended."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")
        parser.add_argument("--summary", type=Path, help="write the outcome as JSON here")
        parser.add_argument(
            "--clock-speed",
            type=float,
            default=1.0,
            help="TensorPix seconds per real second (the emulator's --speed), for the ETAs",
        )

    def handle(
        self,
        *args: Any,
        timeout: float,
        summary: Path | None,
        clock_speed: float,
        **options: Any,
    ) -> None:
        owner = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        try:
            with tempfile.TemporaryDirectory() as sources:
                jobs = {demo_job: self.submit(demo_job, owner, Path(sources)) for demo_job in PLAN}
            self.stdout.write(f"Created {len(jobs)} jobs; the Celery worker submits them.")
            self.watch(jobs, timeout, clock_speed)
        except TensorPixError as error:
            raise CommandError(f"TensorPix: {error}") from error
        outcome = self.outcome(jobs)
        if summary is not None:
            summary.write_text(json.dumps(outcome, indent=2))
        wrong = [item for item in outcome if not item["as_expected"]]
        if wrong:
            labels = ", ".join(f"{item['label']!r} ({item['state']})" for item in wrong)
            raise CommandError(f"Not as expected: {labels}.")
        self.stdout.write(self.style.SUCCESS(f"All {len(outcome)} demo jobs ended as expected."))

    def submit(self, demo_job: DemoJob, owner: Any, sources: Path) -> Job:
        """Create the job as a host would; the worker submits it once this commits."""
        if demo_job.uploaded:
            path = sources / demo_job.source
            path.write_bytes(b"\x00" * 300_000)  # the emulator takes any bytes as a video
            return services.enhance_file(path, demo_job.ml_models, user=owner, **demo_job.options)
        return services.enhance_from_url(
            demo_job.source, demo_job.ml_models, user=owner, **demo_job.options
        )

    def watch(self, jobs: dict[DemoJob, Job], timeout: float, clock_speed: float) -> None:
        """Redraw the jobs' progress until every one is done; cancel and archive on the way."""
        display = ProgressDisplay(self.stdout, live=sys.stdout.isatty(), clock_speed=clock_speed)
        deadline = time.monotonic() + timeout
        while True:
            # Only reading: the worker's polling keeps the rows in sync with TensorPix.
            for demo_job, job in jobs.items():
                job.refresh_from_db()
                if demo_job.expect == CANCELED and job.is_active:
                    services.cancel_job(job)
                if demo_job.expect == ARCHIVED and job.status == JobStatus.FINISHED:
                    services.archive_output(job)
            display.show(jobs)
            if all(self.done(demo_job, job) for demo_job, job in jobs.items()):
                return
            if time.monotonic() > deadline:
                raise CommandError(f"Demo jobs still running after {timeout:.0f} s.")
            time.sleep(0.5)

    @staticmethod
    def done(demo_job: DemoJob, job: Job) -> bool:
        if demo_job.expect == ARCHIVED and job.status == JobStatus.FINISHED:
            return bool(job.archived_file)
        return job.is_terminal or job.submission_state == SubmissionState.REJECTED

    @staticmethod
    def state(job: Job) -> str:
        if job.archived_file:
            return ARCHIVED
        if job.status is None:
            return str(job.get_submission_state_display()).lower()
        return str(job.get_status_display()).lower()

    def outcome(self, jobs: dict[DemoJob, Job]) -> list[dict[str, Any]]:
        rows = []
        for demo_job, job in jobs.items():
            job.refresh_from_db()
            rows.append(
                {
                    "label": demo_job.label,
                    "tensorpix_id": job.tensorpix_id,
                    "expected": demo_job.expect,
                    "state": self.state(job),
                    "status": job.status,
                    "as_expected": self.state(job) == demo_job.expect,
                }
            )
        return rows


class ProgressDisplay:
    """One line per job: redrawn in place on a terminal; otherwise (a log, CI) a line is
    printed only when a job's state changes, not at every step of its progress."""

    def __init__(self, out: Any, *, live: bool, clock_speed: float = 1.0) -> None:
        self.out = out
        self.live = live
        self.clock_speed = clock_speed
        self.lines: list[str] = []

    def show(self, jobs: dict[DemoJob, Job]) -> None:
        lines = [self.line(demo_job, job) for demo_job, job in jobs.items()]
        if lines == self.lines:
            return
        if self.live:
            if self.lines:
                self.out.write(f"\x1b[{len(self.lines)}F", ending="")
            for line in lines:
                self.out.write(f"\x1b[2K{line}")
        else:
            for old, new in zip(self.lines or [""] * len(lines), lines, strict=True):
                if old != new:
                    self.out.write(new)
        self.lines = lines

    def line(self, demo_job: DemoJob, job: Job) -> str:
        state = Command.state(job)
        if not self.live:
            return f"  {state:<24} {demo_job.label}"
        progress = job.processing_progress or 0.0
        if job.status == JobStatus.FINISHED:
            progress = 1.0
        bar = "#" * round(progress * 20)
        eta = ""
        if job.is_active and job.eta_s:
            eta = f" eta {job.eta_s / self.clock_speed:.0f}s"
        return f"  [{bar:<20}] {progress:4.0%} {state:<24}{eta:<10} {demo_job.label}"
