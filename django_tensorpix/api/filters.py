"""django-filter filter sets of the API's list endpoints.

Ranges use django-filter's ``_after`` / ``_before`` pairs (ISO 8601): ``?started_after=
2025-07-01T00:00:00Z``. A filter on a choice accepts several values: ``?status=1&status=0``.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import django_filters
from django import forms
from django.db import models
from django.db.models import QuerySet

from django_tensorpix.enums import JobStatus, SubmissionState, Task
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video


class InstantRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """``<name>_after`` / ``<name>_before`` in ISO 8601, compared as instants in UTC.

    Python accepts offsets PostgreSQL refuses (``-18:54``), which would be a 500 there.
    """

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value:
            value = slice(*(in_utc(moment) for moment in (value.start, value.stop)))
        return super().filter(qs, value)


def in_utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    return moment.astimezone(datetime.UTC) if moment is not None else None


class IntegerFilter(django_filters.NumberFilter):
    """A whole number: ``1.5`` is refused, not rounded to the id 1."""

    field_class = forms.IntegerField


class MirrorFilterSet(django_filters.FilterSet):
    """Integer columns (``tensorpix_id``...) filter by whole numbers."""

    class Meta:
        filter_overrides: ClassVar[dict[Any, Any]] = {
            models.BigIntegerField: {"filter_class": IntegerFilter},
            models.IntegerField: {"filter_class": IntegerFilter},
        }


class JobFilter(MirrorFilterSet):
    status = django_filters.TypedMultipleChoiceFilter(
        choices=JobStatus.choices, coerce=int, help_text="TensorPix status; repeat for several."
    )
    submission_state = django_filters.MultipleChoiceFilter(choices=SubmissionState.choices)
    ml_model = IntegerFilter(
        field_name="ml_models__tensorpix_id",
        distinct=True,
        help_text="Jobs using this AI filter (its TensorPix id).",
    )
    preview = django_filters.BooleanFilter()
    started = InstantRangeFilter()
    finished = InstantRangeFilter()
    tensorpix_id = IntegerFilter()

    class Meta(MirrorFilterSet.Meta):
        model = Job
        fields = ("status", "submission_state", "ml_model", "preview", "tensorpix_id")


class VideoFilter(MirrorFilterSet):
    created_at = InstantRangeFilter()
    uploaded = django_filters.BooleanFilter(
        field_name="tensorpix_id",
        lookup_expr="isnull",
        exclude=True,
        help_text="Known to TensorPix (true) or not yet (false).",
    )

    class Meta(MirrorFilterSet.Meta):
        model = Video
        fields = ("tensorpix_id",)


class RestoredVideoFilter(MirrorFilterSet):
    created_at = InstantRangeFilter()
    deleted = django_filters.BooleanFilter(
        field_name="deleted",
        lookup_expr="isnull",
        exclude=True,
        help_text="Deleted at TensorPix (true) or still there (false).",
    )

    class Meta(MirrorFilterSet.Meta):
        model = RestoredVideo
        fields = ("tensorpix_id",)


class MLModelFilter(MirrorFilterSet):
    task = django_filters.TypedMultipleChoiceFilter(choices=Task.choices, coerce=int)

    class Meta(MirrorFilterSet.Meta):
        model = MLModel
        fields = ("task", "tensorpix_id")
