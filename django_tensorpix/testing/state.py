"""The emulated account: its objects, Credits, storage and the job lifecycle.

One re-entrant lock guards everything. The lifecycle is event driven and lazy: before
any read or write, :meth:`EmulatorState.settle` replays what happened between the last
call and the clock's "now" (queued jobs start FIFO as slots free up, running jobs
finish or fail). Only the few active jobs take part, so this stays cheap with 100,000
jobs in the account.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
from collections import deque
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from . import simulation
from .catalogue import DEFAULT_CATALOGUE, TASK_NAMES, MLModel
from .clock import Clock
from .listing import Listing
from .records import (
    CANCELED,
    FAILED,
    FINISHED,
    IN_QUEUE,
    PROCESSING,
    TERMINAL,
    Job,
    RestoredVideo,
    Video,
)
from .storage import StoredObject
from .validation import ValidationFailed

CANCEL_REFUND_WHILE_PROCESSING = Decimal("0.9")
THUMBNAIL_SIZE = 4_096
PREVIEW_VIDEO_SIZE = 24_000


class ApiProblem(Exception):
    """An error answer with a ``{"detail": ...}`` body (404, 409...)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def not_found() -> ApiProblem:
    return ApiProblem(404, "No TensorPix object matches the given query.")


class EmulatorState:
    """Everything the emulated TensorPix account holds, and the rules that change it."""

    def __init__(self, clock: Clock, *, seed: int = 0, catalogue: bool = True) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        self.rng = random.Random(seed)
        self.balance = Decimal("1000.0000")
        self.storage_quota = 10**12
        self.storage_used = 0
        self.max_active_jobs = 4
        self.list_order = "newest"
        self.failure_rate = 0.0
        self.queue_delay = 5.0
        self.upload_processing_s = 2.0
        self.output_size_range = (50_000, 500_000)
        self.owner_email = "developer@example.com"
        self.owner_id = 4_242

        self.ml_models: dict[int, MLModel] = {}
        self.jobs: dict[int, Job] = {}
        self.videos: dict[int, Video] = {}
        self.restored_videos: dict[int, RestoredVideo] = {}
        self.job_listing = Listing(seed)
        self.video_listing = Listing(seed)
        self.restored_listing = Listing(seed)
        self._job_ids = itertools.count(52_001)
        self._video_ids = itertools.count(31_001)
        self._restored_ids = itertools.count(74_001)

        self._queue: deque[Job] = deque()
        self._events: list[tuple[float, int, int]] = []
        self._active: set[int] = set()
        self._settled_at = clock.now()
        if catalogue:
            for model in DEFAULT_CATALOGUE:
                self.ml_models[model.id] = model

    # -- lifecycle -----------------------------------------------------------------

    def settle(self) -> float:
        """Play the lifecycle forward to the clock's now; returns that now."""
        with self.lock:
            now = self.clock.now()
            while self._step(now):
                pass
            self._settled_at = max(self._settled_at, now)
            return now

    def _step(self, now: float) -> bool:
        next_end = self._events[0][0] if self._events else math.inf
        if self._queue and len(self._active) < self.max_active_jobs:
            head = self._queue[0]
            if head.status != IN_QUEUE:
                self._queue.popleft()
                return True
            start_at = max(self._settled_at, head.eligible_at)
            if start_at <= now and start_at <= next_end:
                self._queue.popleft()
                self._begin(head, start_at)
                return True
        if next_end <= now:
            at, job_id, version = heapq.heappop(self._events)
            job = self.jobs[job_id]
            if job.version == version and job.status == PROCESSING:
                self._settled_at = max(self._settled_at, at)
                self._end(job, at)
            return True
        return False

    def _begin(self, job: Job, at: float) -> None:
        job.status = PROCESSING
        job.processing_started_at = at
        self._active.add(job.id)
        heapq.heappush(self._events, (job.end_at(), job.id, job.version))

    def _end(self, job: Job, at: float) -> None:
        self._active.discard(job.id)
        job.ended_at = at
        if job.will_fail:
            job.progress_at_end = self.progress(job, at)
            job.status = FAILED
            self.balance += job.cost
        else:
            job.status = FINISHED
            job.progress_at_end = 1.0
            job.output = self._make_output(job, at)

    def progress(self, job: Job, now: float) -> float:
        if job.status == PROCESSING and job.processing_started_at is not None:
            elapsed = now - job.processing_started_at
            return round(min(max(elapsed / job.duration, 0.0), 0.999), 4)
        if job.status == IN_QUEUE:
            return 0.0
        return job.progress_at_end

    def eta(self, job: Job, now: float) -> float:
        """Remaining seconds with the jitter TensorPix warns about ("can fluctuate a lot")."""
        if job.status in TERMINAL:
            return 0.0
        noise = random.Random(f"{self.seed}:{job.id}:{int(now)}").uniform(0.75, 1.35)
        if job.status == IN_QUEUE:
            return round((job.duration + max(job.eligible_at - now, 0.0)) * noise, 1)
        assert job.processing_started_at is not None
        remaining = job.processing_started_at + job.duration - now
        return round(max(remaining, 0.0) * noise, 1)

    def _make_output(self, job: Job, at: float) -> RestoredVideo:
        video = job.input_video
        frames = simulation.frames_to_process(video.n_frames, video.framerate, job.options)
        shape = simulation.output_shape(
            job.ml_models, video.width, video.height, video.framerate, frames, job.options
        )
        size = simulation.output_size(shape, self.output_size_range)
        codec = job.options["codec"]
        chroma = job.options["chroma_subsampling"] or (
            "yuv422p10le" if codec == "prores_ks" else "yuv420p"
        )
        output = RestoredVideo(
            id=next(self._restored_ids),
            job_id=job.id,
            name=simulation.output_name(video.name, job.options["container"]),
            created_at=at,
            width=shape.width,
            height=shape.height,
            framerate=shape.framerate,
            n_frames=shape.n_frames,
            size=size,
            bitrate=simulation.bitrate(size, shape.n_frames, shape.framerate),
            codec_id=simulation.CODEC_IDS[codec],
            bit_depth=10 if chroma.endswith("10le") else 8,
            chroma_subsampling=chroma,
        )
        self.restored_videos[output.id] = output
        self.restored_listing.append(output.id)
        self.storage_used += size
        return output

    # -- jobs ------------------------------------------------------------------------

    def new_job_id(self) -> int:
        return next(self._job_ids)

    def new_video_id(self) -> int:
        return next(self._video_ids)

    def adopt_job(self, job: Job) -> None:
        """Register a job built outside the request path (seeding) in its current status.

        A Processing job runs even beyond ``max_active_jobs``; a Finished one gets its
        output video as of ``ended_at``.
        """
        with self.lock:
            self.jobs[job.id] = job
            self.videos[job.input_video.id] = job.input_video
            self.job_listing.append(job.id)
            if job.status == IN_QUEUE:
                self._queue.append(job)
            elif job.status == PROCESSING:
                self._active.add(job.id)
                heapq.heappush(self._events, (job.end_at(), job.id, job.version))
            elif job.status == FINISHED:
                assert job.ended_at is not None
                job.output = self._make_output(job, job.ended_at)

    def get_job(self, job_id: int) -> Job:
        self.settle()
        try:
            return self.jobs[job_id]
        except KeyError:
            raise not_found() from None

    def create_job(self, options: dict[str, Any], *, from_url: bool) -> Job:
        """Validate against the account's state, charge Credits and queue the job."""
        with self.lock:
            now = self.settle()
            models = self._resolve_models(options["ml_models"])
            if from_url:
                video = self._video_from_url(options["video_url"], now)
            else:
                video = self._ready_input_video(options["input_video"], now)
            self._check_input_fits(models, video, options)
            frames = simulation.frames_to_process(video.n_frames, video.framerate, options)
            pixels = video.width * video.height
            cost = simulation.job_cost(
                models, pixels, frames / video.framerate / 60, options["preview"]
            )
            if self.storage_used >= self.storage_quota:
                raise ValidationFailed(non_field_errors=[self._quota_message()])
            if cost > self.balance:
                raise ValidationFailed(
                    non_field_errors=[
                        f"Not enough Credits: the job costs {cost} Credits and the "
                        f"balance is {self.balance} Credits."
                    ]
                )
            if options["target_fps"] is None:
                options = {**options, "target_fps": video.framerate}
            if from_url:
                self.videos[video.id] = video
            job = self._add_job(video, models, options, cost, now)
            job.will_fail = simulation.wants_failure(options.get("video_url") or video.name) or (
                self.failure_rate > 0 and self.rng.random() < self.failure_rate
            )
            return job

    def _add_job(
        self,
        video: Video,
        models: tuple[MLModel, ...],
        options: dict[str, Any],
        cost: Decimal,
        now: float,
    ) -> Job:
        frames = simulation.frames_to_process(video.n_frames, video.framerate, options)
        shape = simulation.output_shape(
            models, video.width, video.height, video.framerate, frames, options
        )
        self.balance -= cost
        job = Job(
            id=self.new_job_id(),
            created_at=now,
            input_video=video,
            ml_models=models,
            options=options,
            cost=cost,
            duration=simulation.processing_seconds(models, video.width * video.height, frames),
            eligible_at=now + self.queue_delay,
            description=f"{video.name}: " + ", ".join(model.name for model in models),
            fps_interpolation_factor=shape.fps_interpolation_factor,
        )
        self.jobs[job.id] = job
        self.job_listing.append(job.id)
        self._queue.append(job)
        return job

    def _resolve_models(self, model_ids: list[int]) -> tuple[MLModel, ...]:
        unknown = [model_id for model_id in model_ids if model_id not in self.ml_models]
        if unknown:
            raise ValidationFailed(
                {"ml_models": [f'Invalid pk "{unknown[0]}" - object does not exist.']}
            )
        models = tuple(self.ml_models[model_id] for model_id in dict.fromkeys(model_ids))
        tasks = [model.task for model in models]
        repeated = sorted({task for task in tasks if tasks.count(task) > 1})
        if repeated:
            names = ", ".join(TASK_NAMES.get(task, str(task)) for task in repeated)
            raise ValidationFailed(
                {"ml_models": [f"Only one AI filter per task can be used ({names})."]}
            )
        return models

    def _ready_input_video(self, video_id: int, now: float) -> Video:
        video = self.videos.get(video_id)
        if video is None or video.deleted:
            raise ValidationFailed(
                {"input_video": [f'Invalid pk "{video_id}" - object does not exist.']}
            )
        if not video.uploaded or not video.is_ready(now):
            raise ValidationFailed(
                {"input_video": ["The video is not uploaded completely yet; its file is null."]}
            )
        return video

    def _video_from_url(self, url: str, now: float) -> Video:
        problem = simulation.video_url_problem(url)
        if problem:
            raise ValidationFailed({"video_url": [problem]})
        width, height = simulation.resolution_hint(url)
        name = PurePosixPath(url.split("?", 1)[0]).name or "video.mp4"
        return Video(
            id=self.new_video_id(),
            name=name,
            created_at=now,
            uploaded=False,
            size=None,
            ready_at=now,
            external_url=url,
            width=width,
            height=height,
        )

    def _check_input_fits(
        self, models: tuple[MLModel, ...], video: Video, options: dict[str, Any]
    ) -> None:
        pixels = video.width * video.height
        for model in models:
            if pixels > model.max_resolution:
                raise ValidationFailed(
                    {
                        "ml_models": [
                            f"{model.name} supports inputs up to {model.max_resolution} pixels; "
                            f"the video is {video.width}x{video.height}."
                        ]
                    }
                )
        start = options["start_frame"] or 0
        if start >= video.n_frames:
            raise ValidationFailed(
                {"start_frame": [f"The video has only {video.n_frames} frames."]}
            )

    def cancel_job(self, job_id: int) -> None:
        """Stop a job: queued jobs are refunded fully, processing ones mostly."""
        with self.lock:
            job = self.get_job(job_id)
            now = self.clock.now()
            if job.status == CANCELED:
                raise ApiProblem(409, "The job has already been canceled.")
            if job.status in TERMINAL:
                raise ValidationFailed(
                    non_field_errors=["The job has already ended and can't be canceled."]
                )
            refund = job.cost
            if job.status == PROCESSING:
                job.progress_at_end = self.progress(job, now)
                refund = (job.cost * CANCEL_REFUND_WHILE_PROCESSING).quantize(
                    simulation.FOUR_PLACES
                )
            self._active.discard(job.id)
            job.version += 1
            job.status = CANCELED
            job.ended_at = now
            self.balance += refund

    def fail_job(self, job_id: int) -> None:
        """Make an active job end Failed (half-way through processing, or right now)."""
        with self.lock:
            job = self.get_job(job_id)
            if job.status in TERMINAL:
                raise ValueError(f"job {job_id} has already ended (status {job.status})")
            job.will_fail = True
            if job.status == PROCESSING:
                job.version += 1
                at = max(self.clock.now(), job.fail_at())
                heapq.heappush(self._events, (at, job.id, job.version))

    # -- videos ----------------------------------------------------------------------

    def get_video(self, video_id: int) -> Video:
        self.settle()
        video = self.videos.get(video_id)
        if video is None or video.deleted:
            raise not_found()
        return video

    def check_upload_allowed(self, size: int) -> None:
        if self.storage_used + size > self.storage_quota:
            raise ValidationFailed(non_field_errors=[self._quota_message()])

    def add_upload(self, name: str, size: int, **metadata: Any) -> Video:
        with self.lock:
            now = self.settle()
            self.check_upload_allowed(size)
            width, height = simulation.resolution_hint(name)
            fields: dict[str, Any] = {"width": width, "height": height, **metadata}
            video = Video(
                id=self.new_video_id(),
                name=name,
                created_at=now,
                uploaded=True,
                size=size,
                ready_at=now + self.upload_processing_s,
                **fields,
            )
            video.bitrate = simulation.bitrate(max(size, 1), video.n_frames, video.framerate)
            self.videos[video.id] = video
            self.video_listing.append(video.id)
            self.storage_used += size
            return video

    def delete_video(self, video_id: int) -> None:
        with self.lock:
            video = self.get_video(video_id)
            if not video.uploaded:
                raise not_found()
            if any(job.input_video is video and job.is_active for job in self._active_jobs()):
                raise ApiProblem(409, "The video is used by an active job.")
            video.deleted = True
            self.video_listing.remove(video.id)
            self.storage_used -= video.size or 0

    def _active_jobs(self) -> list[Job]:
        queued = [job for job in self._queue if job.status == IN_QUEUE]
        return queued + [self.jobs[job_id] for job_id in self._active]

    # -- restored videos ---------------------------------------------------------------

    def get_restored_video(self, video_id: int) -> RestoredVideo:
        self.settle()
        video = self.restored_videos.get(video_id)
        if video is None or video.deleted_at is not None:
            raise not_found()
        return video

    def delete_restored_video(self, video_id: int) -> None:
        """Free the storage; the job keeps its ``output_video`` with ``deleted`` set."""
        with self.lock:
            video = self.get_restored_video(video_id)
            video.deleted_at = self.clock.now()
            self.restored_listing.remove(video.id)
            self.storage_used -= video.size

    # -- storage -----------------------------------------------------------------------

    def stored_object(self, key: str) -> StoredObject | None:
        """The object a storage key names, or ``None`` once deleted (or never existed)."""
        parts = key.split("/")
        if len(parts) < 3 or not parts[1].isdigit():
            return None
        kind, object_id, leaf = parts[0], int(parts[1]), parts[2]
        with self.lock:
            now = self.settle()
            if kind == "videos":
                video = self.videos.get(object_id)
                if video is None or video.deleted or not video.uploaded or not video.is_ready(now):
                    return None
                return self._object(leaf, video.size or 0, object_id)
            restored = self.restored_videos.get(object_id)
            if kind != "restored-videos" or restored is None or restored.deleted_at is not None:
                return None
            return self._object(leaf, restored.size, object_id + 1_000_000)

    def _object(self, leaf: str, size: int, seed: int) -> StoredObject | None:
        if leaf == "file":
            return StoredObject(size, "video/mp4", seed)
        if leaf == "thumbnail":
            return StoredObject(THUMBNAIL_SIZE, "image/jpeg", seed)
        if leaf in ("before", "after"):
            return StoredObject(PREVIEW_VIDEO_SIZE, "video/mp4", seed * 2 + (leaf == "after"))
        return None

    def _quota_message(self) -> str:
        return (
            f"Storage quota exceeded: {self.storage_used} of {self.storage_quota} bytes used. "
            "Delete enhanced or uploaded videos to free space."
        )
