"""Enhance a few videos end to end against a running TensorPix (the emulator, in the demo).

Uploads a video, submits jobs through the client, mirrors everything into Django with the
sync until every job has ended, downloads the finished outputs, and prints what the event
history recorded. ``scripts/demo.sh`` starts the emulator and runs this.
"""

from __future__ import annotations

import io
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobStatus, Task
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job, JobEvent, MLModel
from django_tensorpix.sync import sync_jobs, sync_pages, sync_video

# The emulator fails any job whose source URL or file name contains the word "fail".
SOURCES = (
    "https://media.example.com/wedding-1080p.mp4",
    "https://media.example.com/fail-corrupted-tape.mp4",
)


class Command(BaseCommand):
    help = "Upload, enhance and mirror a few videos through django-tensorpix."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        try:
            with TensorPixClient.for_account() as client:
                self.run_demo(client, timeout)
        except TensorPixError as error:
            raise CommandError(f"TensorPix: {error}") from error

    def run_demo(self, client: TensorPixClient, timeout: float) -> None:
        balance = client.get_balance()["balance_usd"]
        self.stdout.write(f"Balance: {balance} Credits")
        models = sync_pages("ml-models", client.iter_ml_model_pages())
        self.stdout.write(f"AI filters mirrored: {models.seen}")
        upscale = MLModel.objects.filter(task=Task.SUPER_RESOLUTION).first()
        denoise = MLModel.objects.filter(task=Task.DENOISE).first()
        if upscale is None or denoise is None:
            raise CommandError("TensorPix offers no Super Resolution or Denoise filter.")

        upload = client.upload_video(io.BytesIO(b"\x00" * 200_000), "holiday-720p.mp4")
        upload = self.wait_until_uploaded(client, upload["id"], timeout)
        sync_video(upload)
        self.stdout.write(f"Uploaded video {upload['id']} ({upload['size']} bytes)")

        ids = [client.create_job(input_video=upload["id"], ml_models=[upscale.tensorpix_id])["id"]]
        ids += [
            client.create_job_from_url(video_url=url, ml_models=[denoise.tensorpix_id])["id"]
            for url in SOURCES
        ]
        sync_jobs([client.get_job(job_id) for job_id in ids])
        self.stdout.write(f"Submitted jobs {ids}; mirroring until they end…")

        deadline = time.monotonic() + timeout
        last_shown = 0
        while True:
            sync_pages("jobs", client.iter_job_pages())
            last_shown = self.print_events_after(last_shown)
            jobs = Job.objects.filter(tensorpix_id__in=ids)
            if all(job.is_terminal for job in jobs):
                break
            if time.monotonic() > deadline:
                raise CommandError(f"Jobs still running after {timeout:.0f} s.")
            time.sleep(1.0)

        self.stdout.write("")
        for job in jobs.select_related("output_video").order_by("tensorpix_id"):
            line = f"Job {job.tensorpix_id}: {job.get_status_display()}, cost {job.cost_usd}"
            if job.output_video is not None and job.output_video.file:
                target = io.BytesIO()
                size = client.download(job.output_video.file, target)
                line += f", output {job.output_video.width}x{job.output_video.height}"
                line += f", downloaded {size} bytes"
            self.stdout.write(line)
        if not Job.objects.filter(tensorpix_id__in=ids, status=JobStatus.FINISHED).exists():
            raise CommandError("No job finished.")

    def wait_until_uploaded(self, client: TensorPixClient, video_id: int, timeout: float) -> Any:
        """TensorPix answers an upload before the file is ready: poll until ``file`` is set."""
        deadline = time.monotonic() + timeout
        video = client.get_video(video_id)
        while video["file"] is None:
            if time.monotonic() > deadline:
                raise CommandError(f"Video {video_id} still not ready after {timeout:.0f} s.")
            time.sleep(0.5)
            video = client.get_video(video_id)
        return video

    def print_events_after(self, last_pk: int) -> int:
        """Print the events recorded after ``last_pk``; return the last one printed."""
        for event in JobEvent.objects.filter(pk__gt=last_pk).select_related("job").order_by("pk"):
            self.stdout.write(f"  job {event.job.tensorpix_id}: {event}")
            last_pk = event.pk
        return last_pk
