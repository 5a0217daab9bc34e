"""Viewsets over the mirrored objects; actions go through services and polling, never around.

Reading is plain Django: the querysets below load a page of jobs with their videos and ML
models in a fixed number of queries. Acting on TensorPix (create, cancel, refresh,
download, archive) calls :mod:`django_tensorpix.services`, :mod:`django_tensorpix.polling`
and :mod:`django_tensorpix.tasks`; a TensorPix failure becomes a 502/503 with a message,
never a 500. Pagination is the host's (``REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]``);
permissions come from ``TENSORPIX["API_PERMISSION_CLASSES"]`` unless a subclass sets
``permission_classes``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import HttpResponseRedirect
from django.utils.module_loading import import_string
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle

from django_tensorpix import exceptions, polling, services, tasks
from django_tensorpix.api import filters
from django_tensorpix.api._schema import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from django_tensorpix.api.serializers import (
    JobCreateSerializer,
    JobDetailSerializer,
    JobSerializer,
    MLModelSerializer,
    RestoredVideoSerializer,
    VideoSerializer,
    VideoUploadSerializer,
)
from django_tensorpix.conf import DEFAULT_ACCOUNT, tensorpix_settings
from django_tensorpix.enums import JobStatus
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video


class UpstreamError(APIException):
    """TensorPix refused (a wrong key, a refusal we cannot explain) or failed; the message
    says what, never the API key."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "TensorPix could not do this."
    default_code = "tensorpix_error"


class UpstreamUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "TensorPix did not answer; try again later."
    default_code = "tensorpix_unavailable"


class Conflict(APIException):
    """The job is not in a state that allows the action (not submitted, not finished...)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The job is not in a state that allows this."
    default_code = "conflict"


@contextmanager
def tensorpix_errors() -> Iterator[None]:
    """Turn django-tensorpix's errors into API responses with a status code and a message."""
    try:
        yield
    except exceptions.RateLimited as error:
        unavailable = UpstreamUnavailable(str(error))
        if error.retry_after is not None:
            unavailable.wait = error.retry_after
        raise unavailable from error
    except exceptions.TransientError as error:
        raise UpstreamUnavailable(str(error)) from error
    except (exceptions.NotFound, exceptions.Conflict) as error:
        # The job's state at TensorPix forbids it (gone, already canceled...): the caller's
        # request conflicts with the job, nothing is broken.
        raise Conflict(str(error)) from error
    except exceptions.TensorPixError as error:
        raise UpstreamError(str(error)) from error


class CreateThrottle(ScopedRateThrottle):
    """Rate of creation per user, for the views that spend Credits or TensorPix quota: set
    in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` under the view's
    ``create_throttle_scope`` (``"tensorpix_job_create"``, ``"tensorpix_video_upload"``); no
    rate there means no limit (not an error)."""

    scope_attr = "create_throttle_scope"

    def allow_request(self, request: Request, view: Any) -> bool:
        # Read now, not at import, so that changed settings apply (DRF binds them at import).
        self.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        scope = getattr(view, self.scope_attr, None)
        if not scope or scope not in self.THROTTLE_RATES:
            return True
        return super().allow_request(request, view)


# Error answers every endpoint may give, for the schema.
DETAIL = inline_serializer("Detail", fields={"detail": serializers.CharField()})
READ_ERRORS: dict[int, Any] = {
    401: OpenApiResponse(DETAIL, description="Not authenticated."),
    403: OpenApiResponse(DETAIL, description="Not allowed."),
    429: OpenApiResponse(DETAIL, description="Throttled."),
}
OBJECT_ERRORS: dict[int, Any] = {
    **READ_ERRORS,
    404: OpenApiResponse(DETAIL, description="No such object among yours."),
}
LIST_ERRORS: dict[int, Any] = {
    **READ_ERRORS,
    400: OpenApiResponse(description="Invalid filter or page parameters, by field."),
    404: OpenApiResponse(DETAIL, description="No such page."),
}
ACTION_ERRORS: dict[int, Any] = {
    **OBJECT_ERRORS,
    409: OpenApiResponse(
        DETAIL, description="Not possible in the job's current state (here or at TensorPix)."
    ),
    502: OpenApiResponse(DETAIL, description="TensorPix refused or failed."),
    503: OpenApiResponse(DETAIL, description="TensorPix did not answer; try again later."),
}


class TensorPixViewSetMixin:
    """What every API view shares: permissions from settings, filtering, ordering."""

    permission_classes: Sequence[type[BasePermission]] | None = None
    filter_backends = (DjangoFilterBackend, OrderingFilter)
    # The throttle scope of ``create``, for views that spend Credits or quota.
    create_throttle_scope: str | None = None
    request: Request
    action: str | None

    def get_throttles(self) -> list[BaseThrottle]:
        throttles: list[BaseThrottle] = super().get_throttles()  # type: ignore[misc]
        if self.action == "create" and self.create_throttle_scope:
            throttles.append(CreateThrottle())
        return throttles

    def get_permissions(self) -> list[BasePermission]:
        classes = self.permission_classes
        if classes is None:
            classes = [import_string(path) for path in tensorpix_settings.API_PERMISSION_CLASSES]
        return [permission() for permission in classes]

    def visible(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Narrow ``queryset`` to what the request's user may see, as each permission says."""
        for permission in self.get_permissions():
            narrow = getattr(permission, "filter_queryset", None)
            if narrow is not None:
                queryset = narrow(self.request, queryset)
        return queryset


@extend_schema_view(
    list=extend_schema(responses={200: JobSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: JobDetailSerializer, **OBJECT_ERRORS}),
)
class JobViewSet(
    TensorPixViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Job],
):
    """Video enhancement jobs: list, retrieve, create, and the actions cancel, refresh,
    download and archive. No DELETE: cancelling and deleting outputs are explicit actions."""

    queryset = Job.objects.all()
    filterset_class = filters.JobFilter
    ordering_fields = (
        "id",
        "local_created_at",
        "started",
        "finished",
        "status",
        "cost_usd",
        "processing_progress",
    )
    parser_classes = (JSONParser, MultiPartParser, FormParser)
    create_throttle_scope = "tensorpix_job_create"

    def get_queryset(self) -> QuerySet[Job]:
        queryset = Job.objects.select_related("input_video", "output_video").prefetch_related(
            Prefetch("ml_models", queryset=MLModel.objects.order_by("task", "priority", "id"))
        )
        if self.action != "list":
            queryset = queryset.prefetch_related(
                Prefetch("events", queryset=JobEvent.objects.order_by("at", "id"))
            )
        return self.visible(queryset)

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        if self.action == "list":
            return JobSerializer
        if self.action == "create":
            return JobCreateSerializer
        return JobDetailSerializer

    def get_account(self) -> str:
        """The TensorPix account new jobs go to; override to choose one per user."""
        return DEFAULT_ACCOUNT

    def detail_response(self, job: Job, status_code: int = status.HTTP_200_OK) -> Response:
        """The job as retrieve shows it, read afresh."""
        job = self.get_queryset().get(pk=job.pk)
        return Response(
            JobDetailSerializer(job, context=self.get_serializer_context()).data, status=status_code
        )

    @extend_schema(
        request={
            "multipart/form-data": JobCreateSerializer,
            "application/json": JobCreateSerializer,
            "application/x-www-form-urlencoded": JobCreateSerializer,
        },
        responses={
            202: JobDetailSerializer,
            400: OpenApiResponse(description="Invalid fields, by field (DRF's shape)."),
            **READ_ERRORS,
            502: ACTION_ERRORS[502],
            503: ACTION_ERRORS[503],
        },
    )
    def create(self, request: Request) -> Response:
        """Create a job; it is submitted to TensorPix by a Celery task after the commit."""
        serializer = JobCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with tensorpix_errors():
            job = serializer.save(user=request.user, account=self.get_account())
        return self.detail_response(job, status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "CancelResult",
                fields={
                    "outcome": serializers.CharField(),
                    "message": serializers.CharField(),
                    "job": JobDetailSerializer(),
                },
            ),
            **ACTION_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Ask TensorPix to stop the job (a job not sent yet is withdrawn locally)."""
        job = self.get_object()

        with tensorpix_errors():
            try:
                result = services.cancel_job(job)
            except exceptions.NotCancelable as error:
                raise Conflict(str(error)) from error
        body = self.detail_response(job).data
        return Response({"outcome": str(result.outcome), "message": result.message, "job": body})

    @extend_schema(request=None, responses={200: JobDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, pk: str | None = None) -> Response:
        """Read the job from TensorPix now (instead of waiting for the next poll)."""
        job = self.get_object()

        if job.tensorpix_id is None:
            raise Conflict("The job is not known to TensorPix yet.")
        with tensorpix_errors():
            job = polling.refresh_job(job)
        return self.detail_response(job)

    @extend_schema(
        parameters=[
            OpenApiParameter("redirect", bool, description="Answer 302 to the URL instead of JSON.")
        ],
        responses={
            200: inline_serializer("DownloadURL", fields={"url": serializers.CharField()}),
            302: OpenApiResponse(description="Redirect to the output's fresh URL."),
            400: OpenApiResponse(description="``redirect`` is not a boolean."),
            **ACTION_ERRORS,
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> Response | HttpResponseRedirect:
        """A fresh URL of the finished job's output (presigned URLs expire), or a redirect."""
        job = self.get_object()

        with tensorpix_errors():
            try:
                url = services.output_download_url(job)
            except exceptions.NoOutput as error:
                raise Conflict(str(error)) from error
        if serializers.BooleanField().to_internal_value(request.query_params.get("redirect", "0")):
            return HttpResponseRedirect(url)
        return Response({"url": url})

    @extend_schema(request=None, responses={202: JobDetailSerializer, **ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        """Copy the finished output to local storage, in a Celery task (files are large)."""
        job = self.get_object()
        if job.status != JobStatus.FINISHED or job.output_video_id is None:
            raise Conflict("Only a finished job with an output can be archived.")
        # Sent now, not on commit: this request writes nothing the task would need to see.
        try:
            tasks.archive_job_output.delay(job.pk)
        except Exception as error:  # the broker's errors depend on its transport
            raise UpstreamUnavailable("Could not queue the archive; try again later.") from error
        return self.detail_response(job, status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(responses={200: MLModelSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: MLModelSerializer, **OBJECT_ERRORS}),
)
class MLModelViewSet(TensorPixViewSetMixin, viewsets.ReadOnlyModelViewSet[MLModel]):
    """TensorPix's catalogue of AI filters, as last synced."""

    queryset = MLModel.objects.all()
    serializer_class = MLModelSerializer
    filterset_class = filters.MLModelFilter
    ordering_fields = ("id", "tensorpix_id", "task", "priority", "name")

    def get_queryset(self) -> QuerySet[MLModel]:
        return self.visible(MLModel.objects.all())


@extend_schema_view(
    list=extend_schema(responses={200: VideoSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: VideoSerializer, **OBJECT_ERRORS}),
)
class VideoViewSet(
    TensorPixViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Video],
):
    """Input videos: uploaded ones and the sources of jobs created from a URL; upload one."""

    queryset = Video.objects.all()
    serializer_class = VideoSerializer
    filterset_class = filters.VideoFilter
    ordering_fields = ("id", "created_at", "size", "name")
    parser_classes = (MultiPartParser, FormParser)
    create_throttle_scope = "tensorpix_video_upload"

    def get_queryset(self) -> QuerySet[Video]:
        return self.visible(Video.objects.all())

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return VideoUploadSerializer if self.action == "create" else VideoSerializer

    def get_account(self) -> str:
        """The TensorPix account new uploads go to; override to choose one per user."""
        return DEFAULT_ACCOUNT

    @extend_schema(
        request={"multipart/form-data": VideoUploadSerializer},
        responses={
            202: VideoSerializer,
            400: OpenApiResponse(description="Invalid fields, by field (DRF's shape)."),
            **READ_ERRORS,
        },
    )
    def create(self, request: Request) -> Response:
        """Keep the file and upload it to TensorPix in a Celery task after the commit."""
        serializer = VideoUploadSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        video = serializer.save(user=request.user, account=self.get_account())
        video = self.get_queryset().get(pk=video.pk)
        return Response(
            VideoSerializer(video, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema_view(
    list=extend_schema(responses={200: RestoredVideoSerializer, **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: RestoredVideoSerializer, **OBJECT_ERRORS}),
)
class RestoredVideoViewSet(TensorPixViewSetMixin, viewsets.ReadOnlyModelViewSet[RestoredVideo]):
    """Enhanced videos, the outputs of finished jobs."""

    queryset = RestoredVideo.objects.all()
    serializer_class = RestoredVideoSerializer
    filterset_class = filters.RestoredVideoFilter
    ordering_fields = ("id", "created_at", "size")

    def get_queryset(self) -> QuerySet[RestoredVideo]:
        return self.visible(RestoredVideo.objects.select_related("output_of"))
