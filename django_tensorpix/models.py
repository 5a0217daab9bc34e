"""TensorPix objects mirrored as rows: fields, constraints, querysets and small properties.

Columns mirroring TensorPix carry TensorPix's exact field names; local-only columns read as
local (``tensorpix_id``, ``synced_at``, ``next_poll_at``...). Rows are written by
:mod:`django_tensorpix.sync`, which is the only place that decides a status transition.
Nothing here makes HTTP calls.

Column choices worth knowing:

* URLs are ``TextField``: presigned URLs are far longer than a ``URLField``'s 200 chars.
* ``bitrate`` and ``size`` are signed 64-bit (``BigIntegerField``), ``cost_usd`` a
  ``Decimal`` (TensorPix sends it as a string matching ``-?\\d{0,6}(\\.\\d{0,4})?``, in
  Credits despite its name).
* Enum columns store whatever TensorPix sends, including values it adds later; the
  ``choices`` only label the known ones.
* Nullable text columns are nullable because TensorPix's schema says ``null`` and ``""``
  are different values there.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import Q
from django.utils import timezone

from django_tensorpix.conf import DEFAULT_ACCOUNT, tensorpix_settings
from django_tensorpix.enums import (
    TERMINAL_STATUSES,
    ChromaSubsampling,
    Codec,
    Container,
    JobEventKind,
    JobStatus,
    OutputResolution,
    ProresProfile,
    SubmissionState,
    Task,
)


def nullable_text(**kwargs: Any) -> models.TextField[str | None, str | None]:
    """A text column where ``NULL`` and ``""`` mean different things, as in TensorPix's schema.

    Django's advice (and ruff's DJ001) is to avoid ``null`` on text; a mirror must not
    merge TensorPix's ``null`` ("not uploaded yet") with an empty string.
    """
    return models.TextField(null=True, blank=True, **kwargs)


def archive_storage() -> Storage:
    """The storage holding archived outputs, named by ``TENSORPIX["ARCHIVE_STORAGE"]``.

    A callable, so migrations do not change with settings.
    """
    return storages[tensorpix_settings.ARCHIVE_STORAGE]


def archive_upload_to(instance: Job, filename: str) -> str:
    """``TENSORPIX["ARCHIVE_UPLOAD_TO"]`` (strftime pattern) followed by the file's name."""
    return timezone.now().strftime(tensorpix_settings.ARCHIVE_UPLOAD_TO) + filename


def upload_storage() -> Storage:
    """The storage holding local copies of files to enhance, named by ``UPLOAD_STORAGE``.

    A callable, so migrations do not change with settings.
    """
    return storages[tensorpix_settings.UPLOAD_STORAGE]


def upload_upload_to(instance: Video, filename: str) -> str:
    """``TENSORPIX["UPLOAD_UPLOAD_TO"]`` (strftime pattern) followed by the file's name."""
    return timezone.now().strftime(tensorpix_settings.UPLOAD_UPLOAD_TO) + filename


class TensorPixObject(models.Model):
    """What every mirrored TensorPix object has: its account, its id and the last payload.

    Each model declares its own ``tensorpix_id`` (a ``BigIntegerField``): nullable on
    ``Job`` and ``Video``, which exist locally before TensorPix knows them.
    """

    account = models.CharField(
        max_length=100,
        default=DEFAULT_ACCOUNT,
        help_text="Alias of the TensorPix account (settings.TENSORPIX) the object belongs to.",
    )
    remote_data = models.JSONField(
        default=dict,
        blank=True,
        help_text="The last payload read from TensorPix, fields added later by TensorPix included.",
    )
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When TensorPix last returned this object."
    )
    missing_remote = models.BooleanField(
        default=False,
        help_text="A complete listing of TensorPix no longer returned this object.",
    )
    missing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        # Plain (not conditional) so that it can back INSERT ... ON CONFLICT; NULL ids
        # never conflict, so any number of not-yet-submitted rows is allowed.
        constraints = (
            models.UniqueConstraint(
                fields=["account", "tensorpix_id"],
                name="%(app_label)s_%(class)s_unique_remote_id",
            ),
        )


class MLModel(TensorPixObject):
    """An AI filter from TensorPix's catalogue (``MLModelList``)."""

    tensorpix_id = models.BigIntegerField(help_text="The object's id at TensorPix.")
    name = models.TextField()
    task = models.IntegerField(choices=Task.choices)
    cost_weight = models.FloatField()
    upscale_factor = models.IntegerField()
    # Deprecated by TensorPix in favour of Job.fps_interpolation_factor; mirrored anyway.
    fps_boost_factor = models.IntegerField()
    priority = models.IntegerField()
    max_resolution = models.BigIntegerField(help_text="Largest input resolution, in pixels.")

    class Meta(TensorPixObject.Meta):
        verbose_name = "ML model"
        ordering = ("task", "priority", "tensorpix_id")

    def __str__(self) -> str:
        return self.name


class Video(TensorPixObject):
    """An input video: uploaded to TensorPix, or the source of a job created from a URL.

    A row may exist before TensorPix knows the video (``tensorpix_id`` is then null).
    """

    tensorpix_id = models.BigIntegerField(
        null=True, blank=True, help_text="The object's id at TensorPix; null before upload."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tensorpix_videos",
    )
    name = models.TextField(blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    n_frames = models.IntegerField(null=True, blank=True)
    framerate = models.FloatField(null=True, blank=True)
    size = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")
    file = nullable_text(help_text="Presigned URL; null until uploaded, or for from-url inputs.")
    owner = models.TextField(blank=True, help_text="E-mail address of the TensorPix user.")
    thumbnail = nullable_text()
    external_url = nullable_text()
    bitrate = models.BigIntegerField(null=True, blank=True, help_text="Bits per second.")
    codec_id = nullable_text()
    bit_depth = models.IntegerField(null=True, blank=True)
    chroma_subsampling = nullable_text()
    color_space = nullable_text()

    # Local: a file to enhance, kept in the host's storage until TensorPix has it.
    local_file = models.FileField(
        storage=upload_storage, upload_to=upload_upload_to, max_length=500, blank=True
    )
    upload_attempted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the upload request was last sent."
    )
    remote_deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="When this input was deleted at TensorPix from here."
    )
    upload_error = models.TextField(
        blank=True, help_text="Why TensorPix refused an upload made without a job."
    )

    class Meta(TensorPixObject.Meta):
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=["account", "-created_at"], name="tensorpix_video_created"),)

    def __str__(self) -> str:
        return self.name or f"Video {self.tensorpix_id or '(not uploaded)'}"


class RestoredVideo(TensorPixObject):
    """An enhanced video, the output of a finished job (TensorPix's ``RestoredVideo``)."""

    tensorpix_id = models.BigIntegerField(help_text="The object's id at TensorPix.")
    # TensorPix's id of the job, not a local key; the local job is ``output_of``.
    job_id = models.BigIntegerField(null=True, blank=True)
    preview_videos = models.JSONField(
        null=True, blank=True, help_text="Presigned before/after clips: before_video, after_video."
    )
    name = models.TextField(blank=True)
    created_at = models.DateTimeField()
    deleted = models.DateTimeField(null=True, blank=True)
    framerate = models.FloatField(null=True, blank=True)
    n_frames = models.IntegerField(null=True, blank=True)
    bitrate = models.BigIntegerField(null=True, blank=True, help_text="Bits per second.")
    codec_id = nullable_text()
    bit_depth = models.IntegerField(null=True, blank=True)
    chroma_subsampling = nullable_text()
    color_space = nullable_text()
    size = models.BigIntegerField(null=True, blank=True, help_text="Bytes.")
    file = nullable_text(help_text="Presigned download URL; expires, re-signed on every read.")
    thumbnail = nullable_text()
    width = models.IntegerField()
    height = models.IntegerField()
    quality_score = models.IntegerField(null=True, blank=True)
    owner = models.BigIntegerField(help_text="TensorPix's id of the owning user.")

    class Meta(TensorPixObject.Meta):
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=["account", "-created_at"], name="tensorpix_restored_created"),
        )

    def __str__(self) -> str:
        return self.name or f"Restored video {self.tensorpix_id}"

    @property
    def before_video(self) -> str | None:
        return (self.preview_videos or {}).get("before_video")

    @property
    def after_video(self) -> str | None:
        return (self.preview_videos or {}).get("after_video")


# Jobs the poller watches: known to TensorPix, not in a final status (an unknown status
# counts as active) and not gone from TensorPix. One Q, used both by the due-jobs query
# and as the condition of its partial index, so that PostgreSQL can prove the index
# applies (it matches the predicate clause by clause).
POLLABLE = Q(tensorpix_id__isnull=False, status__isnull=False, missing_remote=False) & ~Q(
    status__in=sorted(TERMINAL_STATUSES)
)


class JobQuerySet(models.QuerySet["Job"]):
    def active(self) -> JobQuerySet:
        """Jobs TensorPix is still working on: known to it and not in a final status.

        An unknown status counts as active, so it keeps being polled.
        """
        return self.filter(tensorpix_id__isnull=False, status__isnull=False).exclude(
            status__in=TERMINAL_STATUSES
        )

    def finished(self) -> JobQuerySet:
        return self.filter(status=JobStatus.FINISHED)

    def failed(self) -> JobQuerySet:
        return self.filter(status=JobStatus.FAILED)

    def canceled(self) -> JobQuerySet:
        return self.filter(status=JobStatus.CANCELED)

    def awaiting_submission(self) -> JobQuerySet:
        return self.filter(
            submission_state__in=[
                SubmissionState.PENDING,
                SubmissionState.UPLOADING,
                SubmissionState.SUBMITTING,
                SubmissionState.UNCERTAIN,
            ]
        )

    def due_for_poll(self, now: datetime.datetime | None = None) -> JobQuerySet:
        """Active jobs whose next poll time has come and that no worker holds a lease on.

        Served by the partial index ``tensorpix_job_due`` however many finished jobs
        the table holds. A job never scheduled (``next_poll_at`` null) is due.
        """
        now = now or timezone.now()
        return (
            self.filter(POLLABLE)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lt=now))
            .order_by("next_poll_at", "id")
        )


class Job(TensorPixObject):
    """A video enhancement job: TensorPix's ``Job``, plus its local submission and polling.

    Mirrored columns are null until TensorPix first returns the job. Before submission,
    the mirrored option columns that a create request accepts (``codec``, ``grain``,
    ``start_frame``...) hold what was asked for, and the ``requested_*`` style columns
    below hold the options TensorPix's Job read never shows (``crf``, ``container``...);
    :meth:`requested_options` gathers them. Null (or ``""``) means "not asked, use
    TensorPix's default".

    ``remote_data`` holds the job's payload with its nested objects by reference
    (``{"id": N}``): their payloads are in their own rows' ``remote_data``.
    """

    tensorpix_id = models.BigIntegerField(
        null=True, blank=True, help_text="The job's id at TensorPix; null before submission."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tensorpix_jobs",
    )

    # Mirrored from TensorPix's Job.
    started = models.DateTimeField(null=True, blank=True)
    preview = models.BooleanField(null=True, blank=True)
    description = models.TextField(blank=True)
    cost_usd = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="In Credits."
    )
    # A plain integer with labels: TensorPix may add statuses, stored as they come.
    status = models.IntegerField(choices=JobStatus.choices, null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    processing_progress = models.FloatField(null=True, blank=True, help_text="Ratio, 0 to 1.")
    input_video = models.ForeignKey(
        Video, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    output_video = models.OneToOneField(
        RestoredVideo,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="output_of",
    )
    ml_models = models.ManyToManyField(MLModel, blank=True, related_name="jobs")
    grain = models.FloatField(null=True, blank=True)
    codec = models.TextField(choices=Codec.choices, blank=True)
    output_resolution = models.IntegerField(choices=OutputResolution.choices, null=True, blank=True)
    comparison = models.BooleanField(null=True, blank=True)
    stabilization_smoothing = models.IntegerField(null=True, blank=True)
    fps_interpolation_factor = models.FloatField(null=True, blank=True)
    playback_speed = models.FloatField(null=True, blank=True)
    sharpen_strength = models.FloatField(null=True, blank=True)
    start_frame = models.IntegerField(null=True, blank=True)
    end_frame = models.IntegerField(null=True, blank=True)

    # Create-only options: accepted by POST /api/jobs/ or /api/jobs/from-url/, absent from
    # the Job TensorPix returns, so only ever written locally.
    crf = models.IntegerField(null=True, blank=True)
    qscale = models.IntegerField(null=True, blank=True, help_text="ProRes only.")
    container = models.TextField(choices=Container.choices, blank=True)
    chroma_subsampling = models.TextField(choices=ChromaSubsampling.choices, blank=True)
    target_fps = models.FloatField(null=True, blank=True)
    prores_profile = models.IntegerField(choices=ProresProfile.choices, null=True, blank=True)
    video_url = models.TextField(blank=True, help_text="Source URL for a job created from a URL.")

    # Local: submission.
    local_created_at = models.DateTimeField(default=timezone.now, editable=False)
    submission_state = models.CharField(
        max_length=20, choices=SubmissionState.choices, default=SubmissionState.PENDING
    )
    submission_attempts = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the create request was last sent."
    )
    last_submission_error = models.TextField(blank=True)

    # Local: polling.
    status_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sync last saw the status change."
    )
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    poll_lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker holds this job until then."
    )
    poll_lease_owner = models.CharField(
        max_length=32, blank=True, help_text="Which claim holds the lease (a random token)."
    )
    stalled_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text='When the job was found active past TENSORPIX["POLL_STALL_AFTER"].',
    )
    last_sync_error = models.TextField(blank=True)

    # Local: the output copied to the host's storage.
    archived_file = models.FileField(
        storage=archive_storage, upload_to=archive_upload_to, max_length=500, blank=True
    )
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta(TensorPixObject.Meta):
        ordering = ("-local_created_at", "-id")
        indexes = (
            models.Index(fields=["status", "next_poll_at"], name="tensorpix_job_poll"),
            models.Index(fields=["account", "status"], name="tensorpix_job_account_status"),
            models.Index(fields=["submission_state"], name="tensorpix_job_submission"),
            models.Index(fields=["-local_created_at"], name="tensorpix_job_created"),
            models.Index(fields=["-started"], name="tensorpix_job_started"),
            models.Index(fields=["next_poll_at"], condition=POLLABLE, name="tensorpix_job_due"),
        )

    def __str__(self) -> str:
        if self.tensorpix_id is None:
            return f"Job (local {self.pk}, not submitted)"
        return f"Job {self.tensorpix_id}"

    @property
    def is_terminal(self) -> bool:
        return JobStatus.value_is_terminal(self.status)

    @property
    def is_active(self) -> bool:
        """Known to TensorPix and not final; an unknown status is active."""
        return self.tensorpix_id is not None and self.status is not None and not self.is_terminal

    def wait(self, timeout: float = 3600.0, poll_interval: float | None = None) -> Job:
        """Poll this job until it reaches a final status; return the refreshed row.

        For scripts and notebooks (a web request or a Celery task should never block on
        a job: let the periodic sweep and the signals do the work). Each round refreshes
        the job from TensorPix now (:func:`django_tensorpix.polling.refresh_job`) and
        then sleeps ``poll_interval`` seconds, or the adaptive interval the poller
        schedules when it is ``None``. Raises :class:`TimeoutError` once ``timeout``
        seconds have passed, and the refresh's error when the job can no longer be
        polled (deleted at TensorPix, key refused).
        """
        from django_tensorpix.polling import wait_for_job

        return wait_for_job(self, timeout=timeout, poll_interval=poll_interval)

    def requested_options(self) -> dict[str, Any]:
        """The create options that were set, as keyword arguments for the client's create calls.

        ``input_video``, ``ml_models`` and ``video_url`` are not included. TensorPix's
        from-url endpoint takes no ``qscale``/``prores_profile``: the caller drops them there.
        """
        options = {name: getattr(self, name) for name in REQUESTED_OPTION_FIELDS}
        return {name: value for name, value in options.items() if value not in (None, "")}


# The create-request options a Job row can hold (mirrored and create-only alike).
REQUESTED_OPTION_FIELDS = (
    "codec",
    "crf",
    "qscale",
    "container",
    "chroma_subsampling",
    "preview",
    "start_frame",
    "end_frame",
    "output_resolution",
    "grain",
    "comparison",
    "stabilization_smoothing",
    "target_fps",
    "playback_speed",
    "sharpen_strength",
    "prores_profile",
)


# Event kinds whose signals are durable (see signals.py).
SIGNALLED_EVENT_KINDS = (JobEventKind.STATUS.value, JobEventKind.STALLED.value)


class JobEvent(models.Model):
    """One observed change in a job's life: a status transition or a submission step."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=JobEventKind.choices)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    message = models.TextField(blank=True)
    # Durable signals (status and stalled events): null until every receiver of the
    # event's signals was called. A sweep re-sends what a crashed process left undone
    # once the lease (held by whoever is dispatching) has run out.
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the event's signals were sent."
    )
    dispatch_lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A process is sending the event's signals until then."
    )

    class Meta:
        ordering = ("at", "id")
        indexes = (
            models.Index(fields=["job", "at"], name="tensorpix_jobevent_job_at"),
            models.Index(
                fields=["dispatch_lease_until"],
                condition=Q(dispatched_at__isnull=True, kind__in=SIGNALLED_EVENT_KINDS),
                name="tensorpix_event_undispatched",
            ),
        )

    def __str__(self) -> str:
        old, new = self.old_value, self.new_value
        if self.kind == JobEventKind.STATUS:
            old, new = status_label(old), status_label(new)
        return f"{self.get_kind_display()}: {old or '-'} → {new or '-'}"


def status_label(stored: str) -> str:
    """``"2"`` → ``"Finished"``; a status TensorPix added later is shown as its number."""
    try:
        return str(JobStatus(int(stored)).label)
    except ValueError:
        return stored


class AccountPollState(models.Model):
    """Polling's shared memory about one account, so every worker backs off together.

    A 429 pauses the account until its ``Retry-After`` has passed, a refused key (401/403)
    for ``TENSORPIX["POLL_AUTH_PAUSE"]`` seconds; ``listed_count`` is the job count the
    last listing reported, which prices a sweep through the list against one GET per job.
    """

    account = models.CharField(max_length=100, unique=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(
        max_length=20, blank=True, help_text='"rate_limit" (a 429) or "auth" (a refused key).'
    )
    last_error = models.TextField(blank=True)
    listed_count = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "account polling state"

    def __str__(self) -> str:
        return f"Polling of account {self.account!r}"


class SubmissionLock(models.Model):
    """One source being submitted (a video URL, or an uploaded video): a lease row.

    Submissions of the same source are serialised by claiming ``held_until`` with a
    conditional ``UPDATE``, so two create requests whose answers were lost cannot both be
    reconciled (and resent) at once. A lease rather than a row lock: the submission commits
    its state before the request leaves, and a killed worker's lease simply expires.
    """

    account = models.CharField(max_length=100, default=DEFAULT_ACCOUNT)
    source = models.CharField(max_length=100, help_text="url:<sha256> or video:<local pk>.")
    held_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=["account", "source"], name="tensorpix_submissionlock_unique_source"
            ),
        )

    def __str__(self) -> str:
        return f"{self.account}:{self.source}"
