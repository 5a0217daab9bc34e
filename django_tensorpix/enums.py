"""TensorPix's enums, value for value, plus the local states of a job.

TensorPix may add values at any time (TaskEnum grew from 14 to 15 entries between 2024 and
2025), so the columns using these choices store unknown values as they come; nothing here
is used to reject a payload. ``JobStatus.value_is_terminal`` treats an unknown status as
active, so a job in a status we do not know yet keeps being polled, calmly, until the
poller's stall deadline.
"""

from __future__ import annotations

from django.db import models


class JobStatus(models.IntegerChoices):
    IN_QUEUE = 0, "In Queue"
    PROCESSING = 1, "Processing"
    FINISHED = 2, "Finished"
    FAILED = -1, "Failed"
    CANCELED = -2, "Canceled"

    @property
    def is_terminal(self) -> bool:
        return self.value_is_terminal(self.value)

    @classmethod
    def value_is_terminal(cls, value: int | None) -> bool:
        """Whether a stored status (possibly unknown, or ``None`` before submission) is final."""
        return value in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED})


class Task(models.IntegerChoices):
    SUPER_RESOLUTION = 1, "Super Resolution"
    FILM_DAMAGE = 2, "Film damage"
    DENOISE = 3, "Denoise"
    SHARPEN = 4, "Sharpen"
    VHS_PRETTIFY = 5, "VHS Prettify"
    DROPOUTS_BUSTER = 6, "Dropouts Buster"
    AUTO_COLOR_BALANCE = 7, "Auto Color Balance"
    DECOMPRESSOR = 8, "Decompressor"
    DEINTERLACE = 9, "Deinterlace"
    FPS_INTERPOLATION = 10, "FPS Interpolation"
    SLOW_MOTION = 11, "Slow Motion"
    FACE_ENHANCE = 12, "Face Enhance"
    STABILIZATION = 13, "Stabilization"
    AUDIO_DENOISE = 14, "Audio Denoise"
    LOW_LIGHT_ENHANCE = 15, "Low Light Enhance"


class Codec(models.TextChoices):
    H264 = "libx264", "H264"
    HEVC = "libx265", "HEVC/H265"
    PRORES = "prores_ks", "Apple ProRes"


class Container(models.TextChoices):
    MOV = "mov", "Mov"
    MKV = "mkv", "Mkv"
    MP4 = "mp4", "Mp4"


class ChromaSubsampling(models.TextChoices):
    YUV420P = "yuv420p", "8-bit 4:2:0"
    YUV422P = "yuv422p", "8-bit 4:2:2"
    YUV444P = "yuv444p", "8-bit 4:4:4"
    YUV420P10LE = "yuv420p10le", "10-bit 4:2:0"
    YUV422P10LE = "yuv422p10le", "10-bit 4:2:2"
    YUV444P10LE = "yuv444p10le", "10-bit 4:4:4"


class OutputResolution(models.IntegerChoices):
    NO_RESIZE = -1, "No Resize"
    R360P = 640, "360p"
    SD = 720, "SD"
    HQ = 854, "HQ"
    R720P = 1280, "720p"
    R1080P = 1920, "1080p"
    R2K = 2048, "2K"
    QHD = 2560, "QHD"
    R4K = 3840, "4K"


class ProresProfile(models.IntegerChoices):
    AUTO = -1, "Auto"
    PROXY = 0, "Proxy"
    LT = 1, "Lt"
    STANDARD = 2, "Standard"
    HQ = 3, "Hq"
    V4444 = 4, "V4444"
    V4444XQ = 5, "V4444Xq"


class SubmissionState(models.TextChoices):
    """Where a locally created job is on its way to TensorPix (local only)."""

    PENDING = "pending", "Waiting to be submitted"
    UPLOADING = "uploading", "Uploading the input video"
    SUBMITTING = "submitting", "Sending the job to TensorPix"
    # The create request left but its answer was lost: TensorPix may or may not have the
    # job. Never resubmit blindly (it could bill twice); reconcile against the job list.
    UNCERTAIN = "uncertain", "Outcome unknown, reconciling"
    SUBMITTED = "submitted", "Known to TensorPix"
    REJECTED = "rejected", "Refused by TensorPix"
    # Canceled locally before anything was sent to TensorPix.
    WITHDRAWN = "withdrawn", "Canceled before submission"


class JobEventKind(models.TextChoices):
    STATUS = "status", "Status changed"
    SUBMISSION = "submission", "Submission step"
    MISSING_REMOTE = "missing_remote", "No longer listed by TensorPix"
    # Polling (issue 9): a job active past TENSORPIX["POLL_STALL_AFTER"], and a poll
    # that failed in a way worth keeping (404, 401).
    STALLED = "stalled", "Stalled: active past the deadline"
    POLL_ERROR = "poll_error", "Polling failed"
    CANCEL = "cancel", "Cancel requested"
    ARCHIVE = "archive", "Output archived"


class CancelOutcome(models.TextChoices):
    """What asking TensorPix to stop a job achieved (``services.cancel_job``)."""

    CANCELED = "canceled", "Canceled"
    # 409, or a 404/409 answering a retried DELETE whose first answer was lost: done.
    ALREADY_CANCELED = "already_canceled", "Already canceled"
    # 500: TensorPix says the job is still running and cannot be stopped now.
    NOT_STOPPED = "not_stopped", "Still running, could not be stopped now"
    # 400: the job already ended (finished or failed).
    ALREADY_ENDED = "already_ended", "Already ended"
    # Never sent: canceled locally before submission.
    WITHDRAWN = "withdrawn", "Canceled before submission"
