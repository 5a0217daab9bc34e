"""Serializers: TensorPix's own field names, types and nesting, plus a clearly local block.

Every object has ``id`` (the local primary key: a job has one before TensorPix does) and
``tensorpix_id`` (TensorPix's id, null until TensorPix knows the object), at every level
of nesting. The other top-level fields are TensorPix's, named and nested as in its docs
(the names come from :mod:`django_tensorpix.sync.specs`, the one list of them), so a front
end can follow TensorPix's documentation. What only this project knows (submission state,
errors, the archived file, the owning user, the event timeline) sits under ``local``, where
no field TensorPix adds later can collide with it. ``remote_data`` (the raw payload) is
shown only with ``TENSORPIX["API_EXPOSE_REMOTE_DATA"]``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.fields import empty

from django_tensorpix import services
from django_tensorpix.api._schema import extend_schema_field
from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.enums import Codec, JobStatus, OutputResolution, Task
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.options import JOB_OPTIONS, VIDEO_URL_MAX_LENGTH, OptionSpec
from django_tensorpix.sync.payloads import ObjectSpec
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO

TENSORPIX_ID_HELP = "The object's id at TensorPix; null until TensorPix knows the object."


def tensorpix_fields(spec: ObjectSpec) -> tuple[str, ...]:
    """``id``, ``tensorpix_id`` and TensorPix's documented fields of one object type."""
    return ("id", "tensorpix_id", *(field.name for field in spec.fields))


def known_values(choices: type[models.Choices]) -> str:
    """A description listing an enum's known values; TensorPix adds values at times."""
    known = ", ".join(f"`{value}` {label}" for value, label in choices.choices)
    return f"Known values: {known}. TensorPix may add values; they are shown as they come."


class MirrorSerializer(serializers.ModelSerializer[Any]):
    """A read-only mirror of a TensorPix object, with ``local`` extras where the model has some.

    Enum columns are plain integers/strings here, as in the database: TensorPix adds enum
    values (its task list grew from 14 to 15), and a response must never break its schema
    because of a value this version does not know.
    """

    id = serializers.IntegerField(read_only=True, help_text="Local primary key.")

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for field in fields.values():
            field.read_only = True
        return fields


class MLModelSerializer(MirrorSerializer):
    """An AI filter of TensorPix's catalogue (TensorPix's ``MLModelList``)."""

    task = serializers.IntegerField(read_only=True, help_text=known_values(Task))

    class Meta:
        model = MLModel
        fields = tensorpix_fields(ML_MODEL)


class LocalSerializer(serializers.ModelSerializer[Any]):
    """The ``local`` block of a mirrored object; ``remote_data`` only when the host asks."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        if tensorpix_settings.API_EXPOSE_REMOTE_DATA:
            fields["remote_data"] = serializers.JSONField(read_only=True)
        return fields


class VideoLocalSerializer(LocalSerializer):
    """What this project knows about an input video and TensorPix does not."""

    class Meta:
        model = Video
        fields = ("user", "account", "synced_at", "missing_remote", "upload_error")
        read_only_fields = fields


class VideoSerializer(MirrorSerializer):
    """An input video (TensorPix's ``Video``)."""

    local = VideoLocalSerializer(source="*", read_only=True)

    class Meta:
        model = Video
        fields = (*tensorpix_fields(VIDEO), "local")


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {
            "before_video": {"type": "string", "nullable": True},
            "after_video": {"type": "string", "nullable": True},
        },
    }
)
class PreviewVideosField(serializers.JSONField):
    """TensorPix's ``PreviewVideosSerialiazer`` (sic): two presigned clips, stored as one object."""


class RestoredVideoLocalSerializer(LocalSerializer):
    job = serializers.SerializerMethodField(help_text="Local id of the job this is the output of.")

    class Meta:
        model = RestoredVideo
        fields = ("job", "account", "synced_at", "missing_remote")
        read_only_fields = fields

    def get_job(self, video: RestoredVideo) -> int | None:
        try:
            return video.output_of.pk
        except Job.DoesNotExist:
            return None


class RestoredVideoSerializer(MirrorSerializer):
    """An enhanced video, the output of a finished job (TensorPix's ``RestoredVideo``)."""

    preview_videos = PreviewVideosField(read_only=True, allow_null=True)
    local = RestoredVideoLocalSerializer(source="*", read_only=True)

    class Meta:
        model = RestoredVideo
        fields = (*tensorpix_fields(RESTORED_VIDEO), "local")


class JobEventSerializer(serializers.ModelSerializer[JobEvent]):
    """One observed step of a job's life (local: TensorPix keeps no history)."""

    class Meta:
        model = JobEvent
        fields = ("id", "at", "kind", "old_value", "new_value", "message")
        read_only_fields = fields


class JobLocalSerializer(LocalSerializer):
    """A job's local state: who asked for it, its submission, sync errors, archived output."""

    created_at = serializers.DateTimeField(source="local_created_at", read_only=True)
    archived_file = serializers.FileField(
        read_only=True, allow_null=True, help_text="URL of the output copied to local storage."
    )

    class Meta:
        model = Job
        fields: tuple[str, ...] = (
            "user",
            "account",
            "created_at",
            "video_url",
            "submission_state",
            "submission_attempts",
            "submitted_at",
            "last_submission_error",
            "synced_at",
            "last_sync_error",
            "missing_remote",
            "archived_file",
            "archived_at",
        )
        read_only_fields = fields


class JobDetailLocalSerializer(JobLocalSerializer):
    events = JobEventSerializer(many=True, read_only=True)

    class Meta(JobLocalSerializer.Meta):
        fields = (*JobLocalSerializer.Meta.fields, "events")
        read_only_fields = fields


class JobSerializer(MirrorSerializer):
    """A video enhancement job (TensorPix's ``Job``); TensorPix's fields are null before it
    knows the job, except the options that were asked for."""

    status = serializers.IntegerField(
        read_only=True, allow_null=True, help_text=known_values(JobStatus)
    )
    codec = serializers.CharField(read_only=True, help_text=known_values(Codec))
    output_resolution = serializers.IntegerField(
        read_only=True, allow_null=True, help_text=known_values(OutputResolution)
    )
    input_video = VideoSerializer(read_only=True, allow_null=True)
    output_video = RestoredVideoSerializer(read_only=True, allow_null=True)
    ml_models = MLModelSerializer(many=True, read_only=True)
    local = JobLocalSerializer(source="*", read_only=True)

    class Meta:
        model = Job
        fields = (*tensorpix_fields(JOB), "local")


class JobDetailSerializer(JobSerializer):
    """A job with its event timeline (``local.events``)."""

    local = JobDetailLocalSerializer(source="*", read_only=True)


# Creating jobs -------------------------------------------------------------------------


class OptionalBooleanField(serializers.BooleanField):
    """A boolean that stays unset when a form leaves it out (DRF would read ``False``)."""

    default_empty_html = empty


def option_field(spec: OptionSpec) -> serializers.Field[Any, Any, Any, Any]:
    """The DRF field for one create option of :data:`django_tensorpix.options.JOB_OPTIONS`,
    the one table of TensorPix's bounds and enums (services validate with it too)."""
    common: dict[str, Any] = {"required": False, "allow_null": spec.nullable}
    if not spec.from_url:
        common["help_text"] = "Uploaded files only: TensorPix's from-URL endpoint lacks it."
    if spec.choices is not None:
        return serializers.ChoiceField(
            choices=[(value, str(value) or "(TensorPix's default)") for value in spec.choices],
            allow_blank="" in spec.choices,
            # DRF's default message quotes the input whole: a huge value came back whole.
            error_messages={"invalid_choice": "Not one of the allowed values."},
            **common,
        )
    if spec.kind is bool:
        return OptionalBooleanField(**common)
    if spec.kind is int:
        return serializers.IntegerField(min_value=spec.minimum, max_value=spec.maximum, **common)
    return serializers.FloatField(min_value=spec.minimum, max_value=spec.maximum, **common)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]})
class MLModelRefField(serializers.Field[Any, Any, Any, Any]):
    """An AI filter by TensorPix id (``7``, or ``"7"`` in a form) or by name."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "Give an ML model's TensorPix id or its name."
    }

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        if isinstance(data, str) and data.strip():
            text = data.strip()
            return int(text) if text.isdigit() else text
        self.fail("invalid")
        raise AssertionError("unreachable")  # self.fail raises

    def to_representation(self, value: Any) -> Any:
        return value


class JobCreateSerializer(serializers.Serializer[Job]):
    """A new job: a ``video_url`` (http or https) or an uploaded ``file``, ``ml_models``
    (TensorPix ids or names) and TensorPix's options, bounds and enums included.

    Saving goes through :mod:`django_tensorpix.services`, which creates the local job and
    submits it in a Celery task once the transaction commits.
    """

    video_url = serializers.URLField(
        required=False,
        max_length=VIDEO_URL_MAX_LENGTH,
        help_text="A direct, public or presigned http(s) URL of the video.",
    )
    file = serializers.FileField(required=False, help_text="The video, uploaded (multipart).")
    ml_models = serializers.ListField(
        child=MLModelRefField(), min_length=1, help_text="AI filters: TensorPix ids or names."
    )

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        for spec in JOB_OPTIONS:
            fields[spec.name] = option_field(spec)
        return fields

    def validate_video_url(self, value: str) -> str:
        try:
            return services.validate_video_url(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from_url = bool(attrs.get("video_url"))
        if from_url == bool(attrs.get("file")):
            raise serializers.ValidationError("Give a video_url or a file: one of them.")
        # The services' own checks (ProRes options on a URL, end_frame after start_frame),
        # so that the API refuses exactly what a submission would.
        options = {spec.name: attrs[spec.name] for spec in JOB_OPTIONS if spec.name in attrs}
        try:
            services.validate_job_options(options, from_url=from_url)
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error)) from None
        return attrs

    def options(self) -> dict[str, Any]:
        """The options that were given (not ``None``), as keyword arguments for services."""
        return {
            spec.name: self.validated_data[spec.name]
            for spec in JOB_OPTIONS
            if self.validated_data.get(spec.name) is not None
        }

    def create(self, validated_data: dict[str, Any]) -> Job:
        user, account = validated_data.get("user"), validated_data["account"]
        try:
            if validated_data.get("video_url"):
                return services.enhance_from_url(
                    validated_data["video_url"],
                    validated_data["ml_models"],
                    user=user,
                    account=account,
                    **self.options(),
                )
            upload = validated_data["file"]
            return services.enhance_file(
                upload,
                validated_data["ml_models"],
                name=upload.name,
                user=user,
                account=account,
                **self.options(),
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error)) from None


class VideoUploadSerializer(serializers.Serializer[Video]):
    """A file to upload to TensorPix without enhancing it (it costs storage, not Credits).

    Saving goes through :func:`django_tensorpix.services.upload_video`, which keeps the file
    in the host's storage and uploads it in a Celery task once the transaction commits.
    """

    file = serializers.FileField(help_text="The video, uploaded (multipart).")
    name = serializers.CharField(
        required=False, help_text="The name at TensorPix; the file's own name by default."
    )

    def create(self, validated_data: dict[str, Any]) -> Video:
        upload = validated_data["file"]
        try:
            return services.upload_video(
                upload,
                name=validated_data.get("name") or upload.name,
                user=validated_data.get("user"),
                account=validated_data["account"],
            )
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error)) from None
