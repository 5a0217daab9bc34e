"""Steering jobs from the admin: actions, the refresh/download buttons, the sync button.

Every operation goes through :mod:`django_tensorpix.services` (submission, cancel,
archive, clean-up), :mod:`django_tensorpix.polling` (refresh) or
:mod:`django_tensorpix.tasks` (sync, archive in the background): the admin adds only
permissions, confirmations and messages.

Permissions: refresh, cancel, archive and delete-remote need the real ``change_job``
permission; retrying a submission and enhancing a video need ``add_job`` (they spend
Credits). Cancel, delete-remote and retry ask for confirmation first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError

from django_tensorpix.admin.display import job_state
from django_tensorpix.conf import ImproperlyConfiguredAccount, tensorpix_settings
from django_tensorpix.enums import JobStatus, SubmissionState
from django_tensorpix.exceptions import TensorPixError
from django_tensorpix.models import Job, Video
from django_tensorpix.polling import refresh_job
from django_tensorpix.services import (
    archive_output,
    cancel_job,
    delete_remote_output,
    delete_remote_video,
    output_download_url,
    retry_submission,
)
from django_tensorpix.tasks import archive_job_output, sync_all

if TYPE_CHECKING:
    from django.urls import URLPattern

# What a failed operation on one job may raise: TensorPix's answer, a refusal by the
# services, an account no longer configured, or the broker down while queueing a task.
OPERATION_ERRORS = (TensorPixError, ValidationError, ImproperlyConfiguredAccount, OperationalError)
# Names listed in one message before "and N more".
MAX_NAMED = 20


def named(jobs: Iterable[Any]) -> str:
    jobs = list(jobs)
    names = ", ".join(str(job) for job in jobs[:MAX_NAMED])
    if len(jobs) > MAX_NAMED:
        names += " " + gettext("and %(count)d more") % {"count": len(jobs) - MAX_NAMED}
    return names


def error_text(error: BaseException) -> str:
    """What an operator reads about a failure: the exception's own message.

    Our exceptions never carry the API key (see ``exceptions.py``); a ``ValidationError``
    is flattened to its messages.
    """
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or error.__class__.__name__


class Outcomes:
    """Objects grouped by what happened to them, turned into one message per group."""

    def __init__(self) -> None:
        self.groups: dict[tuple[int, str], list[Any]] = {}

    def add(self, job: Any, what: str, *, level: int = messages.SUCCESS) -> None:
        self.groups.setdefault((level, what), []).append(job)

    def send(self, request: HttpRequest) -> None:
        for (level, what), jobs in self.groups.items():
            text = gettext("%(what)s: %(count)d %(objects)s (%(names)s).") % {
                "what": what,
                "count": len(jobs),
                "objects": model_ngettext(jobs[0], len(jobs)),
                "names": named(jobs),
            }
            messages.add_message(request, level, text)


def run_each(
    request: HttpRequest,
    jobs: Iterable[Any],
    operation: Callable[[Any], str | tuple[str, int]],
) -> None:
    """Run ``operation`` on each job, one failure never stopping the others; report all.

    ``operation`` says what happened (a success), or what and at which message level.
    """
    outcomes = Outcomes()
    for job in jobs:
        try:
            what = operation(job)
        except OPERATION_ERRORS as error:
            outcomes.add(
                job,
                gettext("Failed: %(error)s") % {"error": error_text(error)},
                level=messages.ERROR,
            )
        else:
            text, level = what if isinstance(what, tuple) else (what, messages.SUCCESS)
            outcomes.add(job, text, level=level)
    outcomes.send(request)


def confirm(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    selected: QuerySet[Any],
    queryset: QuerySet[Any],
    *,
    title: str,
    question: str,
    button: str,
    danger: bool,
) -> TemplateResponse | None:
    """The confirmation page of an action on ``queryset`` (the ``selected`` jobs it applies
    to), or ``None`` once the operator confirmed. The whole selection is posted back, so
    the jobs left alone are reported too."""
    if request.POST.get("post") == "yes":
        return None
    count = queryset.count()
    left_alone = selected.count() - count
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "button": button,
        "danger": danger,
        "shown": list(queryset[:200]),
        "count": count,
        "objects_name": model_ngettext(modeladmin.opts, count),
        "left_alone": left_alone,
        "left_alone_name": model_ngettext(modeladmin.opts, left_alone),
        "selected": selected,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.opts,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/django_tensorpix/confirm_action.html", context)


def confirmed_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    eligible: QuerySet[Any],
    operation: Callable[[Any], str | tuple[str, int]],
    *,
    title: str,
    question: str,
    button: str,
    danger: bool,
    skipped_why: str,
) -> TemplateResponse | None:
    """An action that asks first: the confirmation page, then ``operation`` on each
    ``eligible`` object of the selection, and one message for those left alone and why."""
    page = confirm(
        modeladmin,
        request,
        queryset,
        eligible,
        title=title,
        question=question,
        button=button,
        danger=danger,
    )
    if page is not None:
        return page
    chosen, skipped = split(queryset, eligible)
    run_each(request, chosen, operation)
    report_skipped(request, skipped, skipped_why)
    return None


def describe_refreshed(job: Job) -> str:
    return gettext("Refreshed, now %(state)s") % {"state": job_state(job)[0]}


@admin.action(description=_("Refresh selected jobs from TensorPix now"), permissions=["operate"])
def refresh_jobs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]
) -> None:
    jobs, skipped = split(queryset, queryset.filter(tensorpix_id__isnull=False))
    run_each(request, jobs, lambda job: describe_refreshed(refresh_job(job)))
    report_skipped(request, skipped, gettext("Not refreshed, not at TensorPix yet"))


@admin.action(description=_("Cancel selected jobs at TensorPix"), permissions=["operate"])
def cancel_jobs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]
) -> TemplateResponse | None:
    # Active at TensorPix, or not sent yet (withdrawn locally); never one whose create
    # request may be in flight (the service refuses those).
    not_sent = Q(tensorpix_id__isnull=True, submission_state__in=CANCELABLE_UNSENT)
    active = queryset.filter(Q(pk__in=Job.objects.active()) | not_sent)
    return confirmed_action(
        modeladmin,
        request,
        queryset,
        active,
        lambda job: describe_cancel(cancel_job(job)),
        title=gettext("Cancel jobs?"),
        question=gettext(
            "These jobs will be canceled at TensorPix (or withdrawn, if not sent yet). "
            "Work done so far is lost."
        ),
        button=gettext("Yes, cancel them"),
        danger=True,
        skipped_why=gettext("Not canceled, not active or in flight"),
    )


@admin.action(description=_("Archive the output of selected jobs"), permissions=["operate"])
def archive_outputs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]
) -> None:
    archivable, skipped = split(
        queryset,
        queryset.filter(status=JobStatus.FINISHED, output_video__isnull=False, archived_file=""),
    )
    if tensorpix_settings.ADMIN_RUN_INLINE:
        run_each(request, archivable, lambda job: done(archive_output(job), gettext("Archived")))
    else:
        run_each(
            request,
            archivable,
            lambda job: done(archive_job_output.delay(job.pk), gettext("Archiving queued")),
        )
    report_skipped(request, skipped, gettext("Not archived, no output or already archived"))


@admin.action(
    description=_("Delete the output of selected jobs at TensorPix"), permissions=["operate"]
)
def delete_remote_outputs(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]
) -> TemplateResponse | None:
    with_output = queryset.filter(output_video__isnull=False, output_video__deleted__isnull=True)

    def delete(job: Job) -> str:
        delete_remote_output(job)
        return gettext("Output deleted at TensorPix")

    return confirmed_action(
        modeladmin,
        request,
        queryset,
        with_output,
        delete,
        title=gettext("Delete outputs at TensorPix?"),
        question=gettext(
            "The enhanced videos of these jobs will be deleted at TensorPix. Unless they were "
            "archived here, they cannot be downloaded again."
        ),
        button=gettext("Yes, delete them"),
        danger=True,
        skipped_why=gettext("Nothing deleted, no output"),
    )


# What services.retry_submission accepts: refused by TensorPix, or withdrawn before sending.
RETRYABLE = (SubmissionState.REJECTED, SubmissionState.WITHDRAWN)
CANCELABLE_UNSENT = (SubmissionState.PENDING, SubmissionState.UPLOADING)


@admin.action(description=_("Retry the submission of selected jobs"), permissions=["submit"])
def retry_submissions(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Job]
) -> TemplateResponse | None:
    # Never "uncertain" (TensorPix may have the job: resubmitting could bill twice), nor
    # one in flight.
    retryable = queryset.filter(tensorpix_id__isnull=True, submission_state__in=RETRYABLE)
    return confirmed_action(
        modeladmin,
        request,
        queryset,
        retryable,
        lambda job: done(retry_submission(job), gettext("Submission retried")),
        title=gettext("Submit these jobs again?"),
        question=gettext("These jobs will be sent to TensorPix again, which spends Credits."),
        button=gettext("Yes, submit them"),
        danger=False,
        skipped_why=gettext("Not retried, submission not rejected or withdrawn"),
    )


def done(_result: Any, what: str) -> str:
    """``what`` happened (the operation's result carries nothing more to say)."""
    return what


def describe_cancel(result: Any) -> tuple[str, int]:
    """``services.CancelResult`` in words: TensorPix's answer, a warning when not stopped."""
    return str(result), messages.SUCCESS if result.done else messages.WARNING


def split(queryset: QuerySet[Any], eligible: QuerySet[Any]) -> tuple[list[Any], list[Any]]:
    """The selected jobs an action applies to and the others, read before it changes any."""
    chosen = list(eligible)
    chosen_pks = {job.pk for job in chosen}
    return chosen, [job for job in queryset if job.pk not in chosen_pks]


def report_skipped(request: HttpRequest, skipped: Iterable[Any], why: str) -> None:
    outcomes = Outcomes()
    for job in skipped:
        outcomes.add(job, why, level=messages.WARNING)
    outcomes.send(request)


JOB_ACTIONS = (refresh_jobs, cancel_jobs, archive_outputs, delete_remote_outputs, retry_submissions)


@admin.action(description=_("Delete selected videos at TensorPix"), permissions=["operate"])
def delete_remote_videos(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Video]
) -> TemplateResponse | None:
    """Free TensorPix quota: the uploaded inputs are deleted there, the rows kept."""
    uploaded = queryset.filter(tensorpix_id__isnull=False, remote_deleted_at__isnull=True)

    def delete(video: Video) -> str:
        delete_remote_video(video)
        return gettext("Deleted at TensorPix")

    return confirmed_action(
        modeladmin,
        request,
        queryset,
        uploaded,
        delete,
        title=gettext("Delete videos at TensorPix?"),
        question=gettext(
            "These input videos will be deleted at TensorPix; jobs cannot be created from "
            "them any more. The rows here are kept."
        ),
        button=gettext("Yes, delete them"),
        danger=True,
        skipped_why=gettext("Nothing deleted, not at TensorPix"),
    )


class JobViewsMixin:
    """The job admin's own pages: download, refresh, sync from TensorPix, enhance a video."""

    admin_site: admin.AdminSite
    opts: Any
    has_view_permission: Callable[..., bool]
    has_operate_permission: Callable[[HttpRequest], bool]
    has_submit_permission: Callable[[HttpRequest], bool]

    def job_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/download/", wrap(self.download_view), name=f"{name}_download"),
            path("<path:object_id>/refresh/", wrap(self.refresh_view), name=f"{name}_refresh"),
            path("sync/", wrap(self.sync_view), name=f"{name}_sync"),
            path("enhance/", wrap(self.enhance_view), name=f"{name}_enhance"),
        ]

    def change_url(self, job: Job) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[job.pk])

    def changelist_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Redirect to a freshly signed URL of the output: stored presigned URLs expire."""
        job = get_object_or_404(Job, pk=object_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        try:
            url = output_download_url(job)
        except OPERATION_ERRORS as error:
            messages.error(
                request, gettext("No download link: %(error)s") % {"error": error_text(error)}
            )
            return HttpResponseRedirect(self.change_url(job))
        return HttpResponseRedirect(url)

    def refresh_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._refresh)(request, object_id)

    def _refresh(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_operate_permission(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=object_id)
        run_each(request, [job], lambda job: describe_refreshed(refresh_job(job)))
        return HttpResponseRedirect(self.change_url(job))

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        """Confirm, then run the full sync (a Celery task, or inline when configured)."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            try:
                if tensorpix_settings.ADMIN_RUN_INLINE:
                    text, level = describe_sync(sync_all())
                    messages.add_message(request, level, text)
                else:
                    task = sync_all.delay()
                    messages.success(
                        request,
                        gettext("Sync from TensorPix queued as task %(id)s.") % {"id": task.id},
                    )
            except OPERATION_ERRORS as error:
                messages.error(
                    request, gettext("Sync failed: %(error)s") % {"error": error_text(error)}
                )
            return HttpResponseRedirect(self.changelist_url())
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Sync from TensorPix"),
            "opts": self.opts,
            "inline": tensorpix_settings.ADMIN_RUN_INLINE,
        }
        return TemplateResponse(request, "admin/django_tensorpix/job/sync.html", context)

    def enhance_view(self, request: HttpRequest) -> HttpResponse:
        from django_tensorpix.admin.enhance import enhance_view

        if not self.has_submit_permission(request):
            raise PermissionDenied
        return enhance_view(self, request)  # type: ignore[arg-type]


def describe_sync(report: dict[str, dict[str, int]]) -> tuple[str, int]:
    """``sync_all``'s report (objects read per kind, per account) in words, and its level:
    a warning when an account failed (``sync_all`` logs why and goes on with the others)."""
    parts, level = [], messages.SUCCESS
    for account, counts in report.items():
        if counts:
            read = ", ".join(f"{count} {kind}" for kind, count in counts.items())
            parts.append(
                gettext("account %(account)s: %(read)s") % {"account": account, "read": read}
            )
        else:
            parts.append(
                gettext("account %(account)s failed (see the logs)") % {"account": account}
            )
            level = messages.WARNING
    return gettext("Synced from TensorPix: %(parts)s.") % {"parts": "; ".join(parts)}, level
