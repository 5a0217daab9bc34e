"""Jobs in every state the admin shows, for the admin's page and browser tests."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from django_tensorpix.enums import JobEventKind, JobStatus, SubmissionState
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video

THUMBNAIL = "https://storage.example/thumbs/clip.jpg?X-Amz-Signature=abc"
BEFORE = "https://storage.example/previews/before.mp4?X-Amz-Signature=b"
AFTER = "https://storage.example/previews/after.mp4?X-Amz-Signature=a"


def make_catalogue() -> list[MLModel]:
    fields = {"cost_weight": 1.0, "fps_boost_factor": 1, "max_resolution": 2_073_600}
    return [
        MLModel.objects.create(
            tensorpix_id=7, name="Upscale x2", task=1, upscale_factor=2, priority=1, **fields
        ),
        MLModel.objects.create(
            tensorpix_id=8, name="Upscale x4", task=1, upscale_factor=4, priority=2, **fields
        ),
        MLModel.objects.create(
            tensorpix_id=9, name="Denoise", task=3, upscale_factor=1, priority=1, **fields
        ),
    ]


def make_jobs_in_every_state(user: Any = None) -> dict[str, Job]:
    """One job per badge: TensorPix's five statuses, a stalled one and three local states."""
    now = timezone.now()
    upscale, _x4, denoise = make_catalogue()
    video = Video.objects.create(
        tensorpix_id=11,
        name="wedding-1998.mp4",
        created_at=now,
        thumbnail=THUMBNAIL,
        width=720,
        height=576,
        n_frames=750,
        framerate=25.0,
        size=48_000_000,
        user=user,
    )
    output = RestoredVideo.objects.create(
        tensorpix_id=21,
        job_id=31,
        name="wedding-1998-enhanced.mp4",
        created_at=now,
        width=1920,
        height=1080,
        owner=3,
        thumbnail=THUMBNAIL,
        preview_videos={"before_video": BEFORE, "after_video": AFTER},
        size=512_000_000,
    )
    started = now - timedelta(minutes=12)

    def job(key: str, **fields: Any) -> Job:
        fields.setdefault("submission_state", SubmissionState.SUBMITTED)
        fields.setdefault("input_video", video)
        fields.setdefault("user", user)
        fields.setdefault("local_created_at", started - timedelta(minutes=1))
        return Job.objects.create(description=key, **fields)

    jobs = {
        "finished": job(
            "finished",
            tensorpix_id=31,
            status=JobStatus.FINISHED,
            processing_progress=1.0,
            cost_usd=Decimal("1.2500"),
            output_video=output,
            started=started,
            finished=now - timedelta(minutes=2),
            remote_data={"id": 31, "status": 2, "input_video": {"id": 11}},
        ),
        "processing": job(
            "processing",
            tensorpix_id=32,
            status=JobStatus.PROCESSING,
            processing_progress=0.42,
            eta_s=185,
            started=started,
        ),
        "queued": job("queued", tensorpix_id=33, status=JobStatus.IN_QUEUE),
        "failed": job(
            "failed",
            tensorpix_id=34,
            status=JobStatus.FAILED,
            started=started,
            finished=now,
            last_sync_error="TensorPix answered 503 three times",
        ),
        "canceled": job("canceled", tensorpix_id=35, status=JobStatus.CANCELED),
        "stalled": job(
            "stalled",
            tensorpix_id=36,
            status=JobStatus.PROCESSING,
            processing_progress=0.1,
            started=started,
            status_changed_at=started,
            stalled_at=now,
        ),
        "pending": job(
            "pending",
            submission_state=SubmissionState.PENDING,
            input_video=None,
            video_url="https://videos.example/holiday.mov",
        ),
        "rejected": job(
            "rejected",
            submission_state=SubmissionState.REJECTED,
            last_submission_error="ml_models: Invalid pk 99 - object does not exist.",
        ),
        "uncertain": job("uncertain", submission_state=SubmissionState.UNCERTAIN),
    }
    for each in jobs.values():
        each.ml_models.add(upscale)
    jobs["finished"].ml_models.add(denoise)
    finished = jobs["finished"]
    JobEvent.objects.bulk_create(
        [
            JobEvent(
                job=finished,
                kind=JobEventKind.SUBMISSION,
                new_value="submitted",
                at=started - timedelta(seconds=30),
            ),
            JobEvent(
                job=finished,
                kind=JobEventKind.STATUS,
                new_value="0",
                at=started - timedelta(seconds=20),
            ),
            JobEvent(
                job=finished, kind=JobEventKind.STATUS, old_value="0", new_value="1", at=started
            ),
            JobEvent(
                job=finished,
                kind=JobEventKind.STATUS,
                old_value="1",
                new_value="2",
                at=now - timedelta(minutes=2),
            ),
            JobEvent(
                job=jobs["stalled"], kind=JobEventKind.STALLED, at=now, message="active for 6 h"
            ),
        ]
    )
    return jobs
