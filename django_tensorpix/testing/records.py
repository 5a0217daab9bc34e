"""The objects the emulator stores: uploaded videos, enhanced videos and jobs.

Plain mutable records guarded by the state's lock. Times are epoch seconds on the
emulator's clock; a job's current status is derived by the lifecycle in ``state.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalogue import MLModel

IN_QUEUE = 0
PROCESSING = 1
FINISHED = 2
FAILED = -1
CANCELED = -2
TERMINAL = frozenset({FINISHED, FAILED, CANCELED})


@dataclass(slots=True, eq=False)
class Video:
    """An input video: uploaded through ``POST /api/videos/`` or fetched from a URL.

    ``uploaded`` videos are listed, count toward storage and get a ``file`` once
    ``ready_at`` has passed; from-url inputs are never stored (``file`` stays null).
    """

    id: int
    name: str
    created_at: float
    uploaded: bool
    size: int | None
    ready_at: float
    external_url: str | None = None
    width: int = 1280
    height: int = 720
    framerate: float = 30.0
    n_frames: int = 900
    bitrate: int = 4_000_000
    codec_id: str = "avc1"
    bit_depth: int = 8
    chroma_subsampling: str = "yuv420p"
    color_space: str = "bt709"
    deleted: bool = False

    def is_ready(self, now: float) -> bool:
        return now >= self.ready_at


@dataclass(slots=True, eq=False)
class RestoredVideo:
    """An enhanced (output) video, created when its job finishes."""

    id: int
    job_id: int
    name: str
    created_at: float
    width: int
    height: int
    framerate: float
    n_frames: int
    size: int
    bitrate: int
    codec_id: str
    bit_depth: int
    chroma_subsampling: str
    color_space: str = "bt709"
    deleted_at: float | None = None


@dataclass(slots=True, eq=False)
class Job:
    """A video enhancement job and the facts its lifecycle needs.

    ``options`` holds the validated request options (codec, crf, grain...).
    ``duration`` is the simulated processing time in seconds; ``version`` invalidates
    stale entries in the lifecycle's event heap when a job is rescheduled or canceled.
    """

    id: int
    created_at: float
    input_video: Video
    ml_models: tuple[MLModel, ...]
    options: dict[str, Any]
    cost: Decimal
    duration: float
    eligible_at: float
    description: str
    fps_interpolation_factor: float = 1.0
    status: int = IN_QUEUE
    processing_started_at: float | None = None
    ended_at: float | None = None
    progress_at_end: float = 0.0
    will_fail: bool = False
    output: RestoredVideo | None = None
    version: int = 0

    @property
    def is_active(self) -> bool:
        return self.status not in TERMINAL

    def fail_at(self) -> float:
        """When a doomed job fails: half-way through its processing."""
        assert self.processing_started_at is not None
        return self.processing_started_at + self.duration / 2

    def end_at(self) -> float:
        assert self.processing_started_at is not None
        if self.will_fail:
            return self.fail_at()
        return self.processing_started_at + self.duration
