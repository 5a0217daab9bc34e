"""Django admin for the mirrored TensorPix objects.

Mirrored columns are read-only here: TensorPix is their source, and the next sync would
overwrite an edit. The admin shows state; changing it (submit, cancel, clean up) goes
through the services that talk to TensorPix.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video

SYNC_FIELDS = ("account", "tensorpix_id", "synced_at", "missing_remote", "missing_since")


class MirroredAdmin(admin.ModelAdmin):
    """Read-only admin of a mirrored model: every concrete field is shown, none edited."""

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        options = self.model._meta
        return [field.name for field in (*options.concrete_fields, *options.many_to_many)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(MLModel)
class MLModelAdmin(MirroredAdmin):
    list_display = ("name", "tensorpix_id", "task", "upscale_factor", "max_resolution", "account")
    list_filter = ("task", "account", "missing_remote")
    search_fields = ("name",)


@admin.register(Video)
class VideoAdmin(MirroredAdmin):
    list_display = ("__str__", "tensorpix_id", "width", "height", "size", "created_at", "account")
    list_filter = ("account", "missing_remote")
    search_fields = ("name", "=tensorpix_id")
    date_hierarchy = "created_at"


@admin.register(RestoredVideo)
class RestoredVideoAdmin(MirroredAdmin):
    list_display = ("__str__", "tensorpix_id", "job_id", "width", "height", "size", "deleted")
    list_filter = ("account", "missing_remote")
    search_fields = ("name", "=tensorpix_id", "=job_id")
    date_hierarchy = "created_at"


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ("at", "kind", "old_value", "new_value", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(MirroredAdmin):
    list_display = (
        "__str__",
        "status",
        "processing_progress",
        "submission_state",
        "input_video",
        "cost_usd",
        "started",
        "finished",
        "account",
    )
    list_filter = ("status", "submission_state", "account", "missing_remote")
    search_fields = ("=tensorpix_id", "description", "video_url")
    list_select_related = ("input_video",)
    date_hierarchy = "local_created_at"
    inlines = (JobEventInline,)
