"""Admin of the catalogue and the media: ML models, input videos, enhanced outputs."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from django_tensorpix.admin import display
from django_tensorpix.admin.actions import delete_remote_videos
from django_tensorpix.admin.base import MirroredAdmin
from django_tensorpix.admin.filters import AccountFilter, MissingRemoteFilter, UploadFilter
from django_tensorpix.admin.jobs import pretty_json, preview_players
from django_tensorpix.models import MLModel, RestoredVideo, Video


def resolution(obj: Video | RestoredVideo) -> str:
    if obj.width is None or obj.height is None:
        return display.EMPTY
    return f"{obj.width}\N{MULTIPLICATION SIGN}{obj.height}"


def duration(obj: Video | RestoredVideo) -> str:
    if not obj.n_frames or not obj.framerate:
        return display.EMPTY
    return display.human_duration(obj.n_frames / obj.framerate)


# The computed fields on the pages of input and output videos.
MEDIA_FIELDS = ("thumb", "large_thumb", "resolution", "duration", "file_size", "remote_data_json")


class MediaAdmin(MirroredAdmin):
    """Shared columns of input and output videos."""

    @admin.display(description=_("preview"))
    def thumb(self, obj: Video | RestoredVideo) -> SafeString | str:
        return display.thumbnail(obj.thumbnail, str(obj))

    @admin.display(description=_("thumbnail"))
    def large_thumb(self, obj: Video | RestoredVideo) -> SafeString | str:
        return display.thumbnail(obj.thumbnail, str(obj), size="large")

    @admin.display(description=_("resolution"))
    def resolution(self, obj: Video | RestoredVideo) -> str:
        return resolution(obj)

    @admin.display(description=_("duration"))
    def duration(self, obj: Video | RestoredVideo) -> str:
        return duration(obj)

    @admin.display(description=_("size"), ordering="size")
    def file_size(self, obj: Video | RestoredVideo) -> str:
        return filesizeformat(obj.size) if obj.size is not None else display.EMPTY

    @admin.display(description=_("remote data"))
    def remote_data_json(self, obj: Any) -> SafeString:
        return pretty_json(obj.remote_data)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The raw JSON column is shown indented instead; the thumbnail URL as the image.
        computed = ("large_thumb", "resolution", "duration", "file_size")
        fields = [name for name in super().get_fields(request, obj) if name not in computed]
        fields.remove("remote_data")
        fields.remove("remote_data_json")
        return [*computed, *fields, "remote_data_json"]


@admin.register(MLModel)
class MLModelAdmin(MirroredAdmin):
    list_display = (
        "name",
        "tensorpix_id",
        "task",
        "upscale_factor",
        "cost_weight",
        "max_input",
        "priority",
        "missing_remote",
    )
    list_filter = ("task", "upscale_factor", AccountFilter, MissingRemoteFilter)
    search_fields = ("name",)

    @admin.display(description=_("largest input"), ordering="max_resolution")
    def max_input(self, model: MLModel) -> str:
        return _("%(megapixels).1f MP") % {"megapixels": model.max_resolution / 1_000_000}


@admin.register(Video)
class VideoAdmin(MediaAdmin):
    list_display = (
        "thumb",
        "__str__",
        "tensorpix_id",
        "resolution",
        "duration",
        "file_size",
        "upload",
        "created_at",
        "user",
        "missing_remote",
    )
    list_display_links = ("thumb", "__str__")
    list_filter = (UploadFilter, AccountFilter, MissingRemoteFilter)
    search_fields = ("name", "=owner")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = (delete_remote_videos,)
    readonly_fields = (*MEDIA_FIELDS, "jobs_link", "upload")

    @admin.display(description=_("upload"))
    def upload(self, video: Video) -> SafeString:
        return display.upload_badge(video)

    @admin.display(description=_("jobs"))
    def jobs_link(self, video: Video) -> SafeString:
        url = reverse("admin:django_tensorpix_job_changelist")
        return format_html(
            '<a href="{}?input_video__id__exact={}">{}</a>', url, video.pk, _("Jobs")
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [name for name in super().get_fields(request, obj) if name != "thumb"]


@admin.register(RestoredVideo)
class RestoredVideoAdmin(MediaAdmin):
    list_display = (
        "thumb",
        "__str__",
        "tensorpix_id",
        "job_link",
        "resolution",
        "duration",
        "file_size",
        "quality_score",
        "created_at",
        "deleted",
    )
    list_display_links = ("thumb", "__str__")
    list_filter = (AccountFilter, MissingRemoteFilter, ("deleted", admin.EmptyFieldListFilter))
    search_fields = ("name",)
    list_select_related = ("output_of",)
    date_hierarchy = "created_at"
    readonly_fields = (*MEDIA_FIELDS, "job_link", "previews")

    @admin.display(description=_("job"))
    def job_link(self, output: RestoredVideo) -> SafeString | str:
        try:
            job = output.output_of
        except RestoredVideo.output_of.RelatedObjectDoesNotExist:
            return str(output.job_id or display.EMPTY)
        url = reverse("admin:django_tensorpix_job_change", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job)

    @admin.display(description=_("before / after"))
    def previews(self, output: RestoredVideo) -> SafeString | str:
        return preview_players(output.before_video, output.after_video)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = [name for name in super().get_fields(request, obj) if name != "thumb"]
        fields.remove("previews")
        fields.insert(1, "previews")
        return fields
