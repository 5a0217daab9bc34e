"""Changelist filters whose choices cost no scan of the job table."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from django_tensorpix.admin.display import UPLOAD_STATES
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import JobStatus
from django_tensorpix.models import Job, MLModel

NOT_SUBMITTED = "none"
STALLED = "stalled"


class StatusFilter(admin.SimpleListFilter):
    """TensorPix's statuses, plus "Stalled" and "Not at TensorPix yet" (no status)."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *((str(status.value), status.label) for status in JobStatus),
            (STALLED, _("Stalled")),
            (NOT_SUBMITTED, _("Not at TensorPix yet")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value is None:
            return None
        if value == NOT_SUBMITTED:
            return queryset.filter(status__isnull=True)
        if value == STALLED:
            return queryset.active().filter(stalled_at__isnull=False)  # type: ignore[attr-defined]
        try:
            return queryset.filter(status=int(value))
        except ValueError:
            return queryset.none()


class MLModelFilter(admin.SimpleListFilter):
    """Jobs using one ML model of the catalogue.

    Filters on the through table's ``job_id`` rather than joining it: a join would make
    Django's changelist wrap the whole query in an ``EXISTS`` to drop duplicate rows,
    which costs seconds over 100,000 jobs.
    """

    title = _("ML model")
    parameter_name = "ml_model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(str(pk), name) for pk, name in MLModel.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() is None:
            return None
        try:
            model_pk = int(self.value() or "")
        except ValueError:
            return queryset.none()
        through = Job.ml_models.through.objects.filter(mlmodel_id=model_pk)
        return queryset.filter(pk__in=through.values("job_id"))


class MissingRemoteFilter(admin.SimpleListFilter):
    """Rows a complete listing of TensorPix no longer returned."""

    title = _("missing at TensorPix")
    parameter_name = "missing_remote"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() in ("yes", "no"):
            return queryset.filter(missing_remote=self.value() == "yes")
        return None


class AccountFilter(admin.SimpleListFilter):
    """The configured accounts (from settings, not a DISTINCT over every row); hidden when
    there is only one."""

    title = _("account")
    parameter_name = "account"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        aliases = sorted(tensorpix_settings.accounts)
        return [(alias, alias) for alias in aliases] if len(aliases) > 1 else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() is None:
            return None
        return queryset.filter(account=self.value())


class HasErrorFilter(admin.SimpleListFilter):
    """Jobs whose last sync or last submission attempt failed."""

    title = _("has an error")
    parameter_name = "has_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        errors = ~Q(last_sync_error="") | ~Q(last_submission_error="")
        if self.value() == "yes":
            return queryset.filter(errors)
        if self.value() == "no":
            return queryset.exclude(errors)
        return None


class UploadFilter(admin.SimpleListFilter):
    """Input videos by upload state, the same states as ``display.upload_badge``."""

    title = _("upload")
    parameter_name = "upload"
    conditions: ClassVar[dict[str, Q]] = {
        "uploaded": Q(tensorpix_id__isnull=False),
        "waiting": Q(tensorpix_id__isnull=True, upload_error="") & ~Q(local_file=""),
        "refused": Q(tensorpix_id__isnull=True) & ~Q(upload_error=""),
        "remote_only": Q(tensorpix_id__isnull=True, upload_error="", local_file=""),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(key, label) for key, (label, _style) in UPLOAD_STATES.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        condition = self.conditions.get(self.value() or "")
        return None if condition is None else queryset.filter(condition)
