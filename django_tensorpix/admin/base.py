"""What every admin of a mirrored TensorPix object shares: shown, never edited or deleted.

TensorPix is the source of these rows: a local edit would be overwritten by the next sync
and a local delete recreated by it. So the pages are view-only (no Save, no Delete), and
changing anything at TensorPix goes through explicit actions that call the services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

MEDIA_CSS = {"all": ("django_tensorpix/admin.css",)}


class MirroredAdmin(admin.ModelAdmin):
    """Read-only admin of a mirrored model: every concrete field is shown, none edited."""

    show_full_result_count = False

    class Media:
        css = MEDIA_CSS

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        options = self.model._meta
        fields = [field.name for field in (*options.concrete_fields, *options.many_to_many)]
        return [*fields, *super().get_readonly_fields(request, obj)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # The form is never saved; Django then renders the page as "view" (no Save buttons).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """The model's real ``change`` permission: steering objects at TensorPix needs it."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def has_submit_permission(self, request: HttpRequest) -> bool:
        """The model's real ``add`` permission: submitting new work (spending Credits)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.add_{opts.model_name}")
