"""The job admin: a queue that reads at a glance, and a detail page that tells the whole story.

The changelist costs the same number of queries for 10 rows as for 100: related rows are
joined (input video, user) or prefetched in one query (ML models), and "stalled" is an
``EXISTS`` annotation. ``show_full_result_count`` is off, so a filtered page over 100,000
jobs never counts the whole table twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator, smart_split, unescape_string_literal
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from django_tensorpix.admin import display
from django_tensorpix.admin.actions import JOB_ACTIONS, JobViewsMixin
from django_tensorpix.admin.base import MirroredAdmin
from django_tensorpix.admin.filters import (
    AccountFilter,
    HasErrorFilter,
    MissingRemoteFilter,
    MLModelFilter,
    StatusFilter,
)
from django_tensorpix.enums import CancelOutcome, JobEventKind, SubmissionState
from django_tensorpix.models import (
    REQUESTED_OPTION_FIELDS,
    Job,
    JobEvent,
    MLModel,
    Video,
    status_label,
)


@dataclass
class TimelineEntry:
    at: datetime
    label: str
    detail: str
    style: str
    since_previous: str = ""
    since_start: str = ""


def timeline_entries(job: Job, events: list[JobEvent]) -> list[TimelineEntry]:
    """The job's life in order: its local creation and submission steps, the statuses the
    sync observed, stalls and errors, and the start and end times TensorPix reported, each
    with the time since the previous entry and since the first one."""
    entries = [
        TimelineEntry(job.local_created_at, gettext("Created here"), "", "local"),
    ]
    if job.started:
        entries.append(TimelineEntry(job.started, gettext("Started at TensorPix"), "", "started"))
    if job.finished:
        entries.append(TimelineEntry(job.finished, gettext("Ended at TensorPix"), "", "ended"))
    for event in events:
        entries.append(event_entry(event))
    entries.sort(key=lambda entry: entry.at)
    first = entries[0].at
    for previous, entry in zip([None, *entries], entries, strict=False):
        if previous is not None:
            entry.since_previous = "+" + display.between(previous.at, entry.at)
            entry.since_start = display.between(first, entry.at)
    return entries


def event_entry(event: JobEvent) -> TimelineEntry:
    old, new = event.old_value, event.new_value
    if event.kind == JobEventKind.STATUS:
        label = status_label(new)
        detail = gettext("from %(old)s") % {"old": status_label(old)} if old else ""
        style = {"2": "finished", "-1": "failed", "-2": "canceled", "1": "processing"}.get(
            new, "queued"
        )
    elif event.kind == JobEventKind.SUBMISSION and new in SubmissionState.values:
        state = SubmissionState(new)
        label, detail = str(state.label), ""
        style = display.SUBMISSION_STYLES.get(state, "submission")
    elif event.kind == JobEventKind.CANCEL and new in CancelOutcome.values:
        label, detail = event.get_kind_display(), str(CancelOutcome(new).label)
        style = "canceled"
    else:
        label = event.get_kind_display() if event.kind in JobEventKind.values else event.kind
        detail = " → ".join(value for value in (old, new) if value)
        style = "stalled" if event.kind == JobEventKind.STALLED else "local"
    if event.message:
        detail = f"{detail} · {event.message}" if detail else event.message
    return TimelineEntry(event.at, label, detail, style)


# Where each column of a job is shown on its page; a test checks that none is forgotten.
JOB_FIELDSETS: Any = (
    (
        _("Status"),
        {
            "fields": (
                ("tensorpix_id", "account"),
                "status_badge",
                ("progress", "eta"),
                ("started", "finished", "run_time"),
                "cost",
                "ml_model_list",
                "user",
                "description",
            )
        },
    ),
    (_("Timeline"), {"fields": ("timeline",)}),
    (_("Output"), {"fields": ("output", "previews", "archived", "archived_at")}),
    (_("Input"), {"fields": ("input", "video_url")}),
    (
        _("Requested options"),
        {
            "fields": (*REQUESTED_OPTION_FIELDS, "fps_interpolation_factor"),
            "classes": ("collapse",),
        },
    ),
    (
        _("Submission"),
        {
            "fields": (
                "submission_state",
                "submission_attempts",
                "submitted_at",
                "local_created_at",
                "last_submission_error",
            )
        },
    ),
    (
        _("Sync"),
        {
            "fields": (
                "synced_at",
                "status_changed_at",
                "next_poll_at",
                "poll_failures",
                "poll_lease_until",
                "poll_lease_owner",
                "stalled_at",
                ("missing_remote", "missing_since"),
                "last_sync_error",
                "remote_data_json",
            ),
            "classes": ("collapse",),
        },
    ),
)
# Columns shown through a display method instead of their raw value.
SHOWN_BY_METHOD = {
    "processing_progress": "progress",
    "eta_s": "eta",
    "status": "status_badge",
    "cost_usd": "cost",
    "ml_models": "ml_model_list",
    "input_video": "input",
    "output_video": "output",
    "archived_file": "archived",
    "remote_data": "remote_data_json",
    "id": None,
}


@admin.register(Job)
class JobAdmin(JobViewsMixin, MirroredAdmin):
    list_display = (
        "__str__",
        "status_badge",
        "progress",
        "eta",
        "input",
        "ml_model_list",
        "cost",
        "started_at",
        "finished_at",
        "user",
    )
    list_display_links = ("__str__",)
    list_filter = (
        StatusFilter,
        "submission_state",
        MLModelFilter,
        "preview",
        AccountFilter,
        HasErrorFilter,
        MissingRemoteFilter,
    )
    date_hierarchy = "started"
    # Searched by get_search_results; listed so that the search box is shown.
    search_fields = ("tensorpix_id", "input_video__name", "video_url", "user")
    search_help_text = _(
        "A number finds a TensorPix id; words are looked for in the input video's name, "
        "the video URL and the user's name."
    )
    list_select_related = ("input_video", "user")
    fieldsets = JOB_FIELDSETS
    readonly_fields = (
        "status_badge",
        "progress",
        "eta",
        "run_time",
        "cost",
        "ml_model_list",
        "timeline",
        "output",
        "previews",
        "archived",
        "input",
        "remote_data_json",
    )
    change_form_template = "admin/django_tensorpix/job/change_form.html"
    change_list_template = "admin/django_tensorpix/job/change_list.html"
    actions = JOB_ACTIONS

    def get_urls(self) -> list[URLPattern]:
        return [*self.job_urls(), *super().get_urls()]

    def tool_permissions(self, request: HttpRequest) -> dict[str, bool]:
        return {
            "tpx_can_operate": self.has_operate_permission(request),
            "tpx_can_submit": self.has_submit_permission(request),
        }

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return super().changelist_view(
            request, {**self.tool_permissions(request), **(extra_context or {})}
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return super().change_view(
            request,
            object_id,
            form_url,
            {**self.tool_permissions(request), **(extra_context or {})},
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("ml_models", queryset=MLModel.objects.only("name", "task")))
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Job], search_term: str
    ) -> tuple[QuerySet[Job], bool]:
        """A number is a TensorPix id (exact, indexed); other words must each appear in the
        input video's name, the video URL or the user's name.

        Related tables are searched first (``IN (subquery)``) instead of joined, so no
        duplicate rows arise and Django does not wrap the page in a costly ``EXISTS``.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit() and len(term) < 19:
            return queryset.filter(tensorpix_id=int(term)), False
        user_model = get_user_model()
        username = f"{user_model.USERNAME_FIELD}__icontains"
        for word in smart_split(term):
            word = unescape_string_literal(word) if word[0] in "\"'" else word
            videos = Video.objects.filter(name__icontains=word).values("pk")
            users = user_model._default_manager.filter(**{username: word}).values("pk")
            queryset = queryset.filter(
                Q(input_video__in=videos) | Q(video_url__icontains=word) | Q(user__in=users)
            )
        return queryset, False

    # Columns and read-only fields.

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, job: Job) -> SafeString:
        return display.status_badge(job)

    @admin.display(description=_("progress"), ordering="processing_progress")
    def progress(self, job: Job) -> SafeString | str:
        return display.progress_bar(job.processing_progress)

    @admin.display(description=_("ETA"), ordering="eta_s")
    def eta(self, job: Job) -> str:
        return display.human_eta(job.eta_s) if job.is_active else display.EMPTY

    @admin.display(description=_("started"), ordering="started")
    def started_at(self, job: Job) -> str:
        return display.short_datetime(job.started)

    @admin.display(description=_("finished"), ordering="finished")
    def finished_at(self, job: Job) -> str:
        return display.short_datetime(job.finished)

    @admin.display(description=_("run time"))
    def run_time(self, job: Job) -> str:
        return display.between(job.started, job.finished)

    @admin.display(description=_("cost"), ordering="cost_usd")
    def cost(self, job: Job) -> str:
        return display.credits(job.cost_usd)

    @admin.display(description=_("ML models"))
    def ml_model_list(self, job: Job) -> str:
        return ", ".join(model.name for model in job.ml_models.all()) or display.EMPTY

    @admin.display(description=_("input video"), ordering="input_video__name")
    def input(self, job: Job) -> SafeString | str:
        video = job.input_video
        if video is None:
            return Truncator(job.video_url).chars(40) or display.EMPTY
        return format_html(
            '<span class="tpx-media">{}<a href="{}">{}</a></span>',
            display.thumbnail(video.thumbnail, str(video)),
            reverse("admin:django_tensorpix_video_change", args=[video.pk]),
            video,
        )

    @admin.display(description=_("output video"))
    def output(self, job: Job) -> SafeString | str:
        output = job.output_video
        if output is None:
            return display.EMPTY
        download = ""
        if output.deleted is None and not job.missing_remote:
            download = format_html(
                ' <a class="button tpx-download" href="{}">{}</a>',
                reverse("admin:django_tensorpix_job_download", args=[job.pk]),
                gettext("Download (fresh link)"),
            )
        return format_html(
            '<div class="tpx-media tpx-media-large">{}<div><a href="{}">{}</a> {}{}</div></div>',
            display.thumbnail(output.thumbnail, str(output), size="large"),
            reverse("admin:django_tensorpix_restoredvideo_change", args=[output.pk]),
            output,
            f"{output.width}\N{MULTIPLICATION SIGN}{output.height}",
            download,
        )

    @admin.display(description=_("before / after"))
    def previews(self, job: Job) -> SafeString | str:
        output = job.output_video
        if output is None:
            return display.EMPTY
        return preview_players(output.before_video, output.after_video)

    @admin.display(description=_("archived file"))
    def archived(self, job: Job) -> SafeString | str:
        if not job.archived_file:
            return display.EMPTY
        try:
            url = job.archived_file.url
        except NotImplementedError:
            return str(job.archived_file.name)
        return format_html('<a href="{}">{}</a>', url, job.archived_file.name)

    @admin.display(description=_("timeline"))
    def timeline(self, job: Job) -> SafeString:
        entries = timeline_entries(job, list(job.events.all()))
        # The template escapes; format_html keeps its (safe) output as it is.
        return format_html(
            "{}",
            render_to_string(
                "admin/django_tensorpix/job/timeline.html", {"entries": entries, "job": job}
            ),
        )

    @admin.display(description=_("remote data"))
    def remote_data_json(self, obj: Any) -> SafeString:
        return pretty_json(obj.remote_data)


def pretty_json(data: Any) -> SafeString:
    return format_html(
        '<pre class="tpx-json">{}</pre>',
        json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    )


def preview_players(before: str | None, after: str | None) -> SafeString | str:
    """TensorPix's before/after clips side by side in two ``<video>`` players."""
    clips = [
        (gettext("Before"), display.safe_url(before)),
        (gettext("After"), display.safe_url(after)),
    ]
    if not any(url for _label, url in clips):
        return display.EMPTY
    return format_html(
        '<div class="tpx-previews">{}</div>',
        format_html_join(
            "",
            '<figure class="tpx-preview"><video controls muted preload="metadata" src="{}">'
            "</video><figcaption>{}</figcaption></figure>",
            ((url or "", label) for label, url in clips),
        ),
    )
