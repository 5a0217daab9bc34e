"""Submit the demo's jobs and show each one's progress until all have ended.

``scripts/demo.sh`` runs this once the emulator, the Celery worker and the server are up.
The jobs vary in source (a URL, an uploaded file), AI filters and options; one is made to
fail (the emulator fails any job whose URL or file name contains "fail"), one is canceled
while it runs and one has its output archived into the project's storage. The command
exits non-zero unless every job reached the state it was meant to, so the headless demo
doubles as an end-to-end test. ``--summary FILE`` writes what happened as JSON.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobStatus, Task
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job, MLModel
from django_tensorpix.sync import sync_job, sync_ml_models

FINISHED, FAILED, CANCELED, ARCHIVED = "finished", "failed", "canceled", "archived"


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: one per job
class DemoJob:
    """One job of the demo: where its video comes from, what to do, and how it should end."""

    label: str
    source: str  # a URL, or the name of a file to upload
    tasks: tuple[int, ...]  # the first AI filter of each task is used
    options: dict[str, Any] = field(default_factory=dict)
    expect: str = FINISHED

    @property
    def uploaded(self) -> bool:
        return "://" not in self.source


PLAN = (
    DemoJob(
        "Wedding film: 2x upscale + denoise, archived",
        "https://media.example.com/wedding-720p.mp4",
        (Task.SUPER_RESOLUTION, Task.DENOISE),
        {"codec": "libx265", "output_resolution": 2560},
        expect=ARCHIVED,
    ),
    DemoJob(
        "Holiday clip (uploaded): face enhance",
        "holiday-720p.mp4",
        (Task.FACE_ENHANCE,),
        {"container": "mov"},
    ),
    DemoJob(
        "VHS tape: prettify + deinterlace, first 600 frames",
        "https://media.example.com/family-vhs-480p.mp4",
        (Task.VHS_PRETTIFY, Task.DEINTERLACE),
        {"start_frame": 0, "end_frame": 600},
    ),
    DemoJob(
        "Damaged reel: denoise (fails on purpose)",
        "https://media.example.com/fail-damaged-reel-720p.mp4",
        (Task.DENOISE,),
        expect=FAILED,
    ),
    DemoJob(
        "Drone shot: stabilization, canceled",
        "https://media.example.com/drone-1080p.mp4",
        (Task.STABILIZATION,),
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

    def handle(self, *args: Any, timeout: float, summary: Path | None, **options: Any) -> None:
        try:
            with TensorPixClient.for_account() as client:
                jobs = self.submit_all(client)
                self.watch(client, jobs, timeout)
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

    # Submitting

    def submit_all(self, client: TensorPixClient) -> dict[DemoJob, Job]:
        for page in client.iter_ml_model_pages():
            sync_ml_models(page)
        jobs = {}
        for demo_job in PLAN:
            job = self.submit(client, demo_job)
            jobs[demo_job] = job
            self.stdout.write(f"Submitted job {job.tensorpix_id}: {demo_job.label}")
        for demo_job, job in jobs.items():
            if demo_job.expect == CANCELED:
                assert job.tensorpix_id is not None
                client.cancel_job(job.tensorpix_id)
                jobs[demo_job] = sync_job(client.get_job(job.tensorpix_id))
                self.stdout.write(f"Canceled job {job.tensorpix_id}")
        return jobs

    def submit(self, client: TensorPixClient, demo_job: DemoJob) -> Job:
        filters = [self.first_filter(task) for task in demo_job.tasks]
        options: Any = demo_job.options
        if demo_job.uploaded:
            video = client.upload_video(io.BytesIO(b"\x00" * 300_000), demo_job.source)
            while client.get_video(video["id"])["file"] is None:
                time.sleep(0.2)
            created: dict[str, Any] = dict(
                client.create_job(input_video=video["id"], ml_models=filters, **options)
            )
        else:
            created = dict(
                client.create_job_from_url(video_url=demo_job.source, ml_models=filters, **options)
            )
        return sync_job(client.get_job(created["id"]))

    def first_filter(self, task: int) -> int:
        ml_model = MLModel.objects.filter(task=task).order_by("tensorpix_id").first()
        if ml_model is None:
            raise CommandError(f"TensorPix offers no {Task(task).label} filter.")
        return ml_model.tensorpix_id

    # Watching

    def watch(self, client: TensorPixClient, jobs: dict[DemoJob, Job], timeout: float) -> None:
        """Keep the jobs in sync and redraw their progress until every one is done."""
        display = ProgressDisplay(self.stdout, live=sys.stdout.isatty())
        deadline = time.monotonic() + timeout
        while True:
            for demo_job, job in jobs.items():
                if job.is_active and job.tensorpix_id is not None:
                    jobs[demo_job] = job = sync_job(client.get_job(job.tensorpix_id))
                if demo_job.expect == ARCHIVED and job.status == JobStatus.FINISHED:
                    self.archive(client, job)
            display.show(jobs)
            if all(self.done(demo_job, job) for demo_job, job in jobs.items()):
                return
            if time.monotonic() > deadline:
                raise CommandError(f"Demo jobs still running after {timeout:.0f} s.")
            time.sleep(0.5)

    def archive(self, client: TensorPixClient, job: Job) -> None:
        if job.archived_file or job.output_video is None or not job.output_video.file:
            return
        target = io.BytesIO()
        client.download(job.output_video.file, target)
        job.archived_file.save(f"job-{job.tensorpix_id}.mp4", ContentFile(target.getvalue()))
        job.archived_at = timezone.now()
        job.save(update_fields=["archived_file", "archived_at"])

    @staticmethod
    def done(demo_job: DemoJob, job: Job) -> bool:
        if demo_job.expect == ARCHIVED and job.status == JobStatus.FINISHED:
            return bool(job.archived_file)
        return job.is_terminal

    @staticmethod
    def state(job: Job) -> str:
        if job.archived_file:
            return ARCHIVED
        if job.status is None:
            return "not submitted"
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

    def __init__(self, out: Any, *, live: bool) -> None:
        self.out = out
        self.live = live
        self.lines: list[str] = []

    def show(self, jobs: dict[DemoJob, Job]) -> None:
        lines = [self.line(demo_job, job, live=self.live) for demo_job, job in jobs.items()]
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

    @staticmethod
    def line(demo_job: DemoJob, job: Job, *, live: bool) -> str:
        state = Command.state(job)
        if not live:
            return f"  {state:<13} {demo_job.label}"
        progress = job.processing_progress or 0.0
        if job.status == JobStatus.FINISHED:
            progress = 1.0
        bar = "#" * round(progress * 20)
        eta = f" eta {job.eta_s:.0f}s" if job.is_active and job.eta_s else ""
        return f"  [{bar:<20}] {progress:4.0%} {state:<13}{eta:<10} {demo_job.label}"
