"""TensorPix's object types, field by field, as the upstream schema (2025-07-04) declares them.

Required and nullable follow the schema, with one documented exception: ``Job.output_video``
is declared non-nullable but is null until the job finishes (and stays null on failure or
cancel). ``Job.input_video`` is accepted as null too, defensively: the local column is
nullable anyway.
"""

from __future__ import annotations

from typing import Any

from django_tensorpix.sync.payloads import (
    Field,
    Invalid,
    ObjectSpec,
    big_integer,
    boolean,
    cost,
    date_time,
    integer,
    many,
    number,
    string,
)


def preview_videos(value: Any) -> dict[str, Any]:
    """``PreviewVideosSerialiazer`` (sic): two nullable presigned URLs, stored as one object."""
    if not isinstance(value, dict):
        raise Invalid("expected an object")
    for field in PREVIEW_VIDEOS:
        field.read(value)
    return value


PREVIEW_VIDEOS = tuple(
    Field(name, string, nullable=True) for name in ("before_video", "after_video")
)


ML_MODEL = ObjectSpec(
    "MLModel",
    (
        Field("name", string),
        Field("task", integer),
        Field("cost_weight", number),
        Field("upscale_factor", integer),
        Field("fps_boost_factor", integer),
        Field("priority", integer),
        Field("max_resolution", big_integer),
    ),
)

VIDEO = ObjectSpec(
    "Video",
    (
        Field("name", string),
        Field("width", integer, nullable=True),
        Field("height", integer, nullable=True),
        Field("created_at", date_time),
        Field("n_frames", integer, nullable=True),
        Field("framerate", number, nullable=True),
        Field("size", big_integer, nullable=True),
        Field("file", string, nullable=True, required=False, url=True),
        Field("owner", string),
        Field("thumbnail", string, nullable=True, url=True),
        Field("external_url", string, nullable=True),
        Field("bitrate", big_integer, nullable=True),
        Field("codec_id", string, nullable=True),
        Field("bit_depth", integer, nullable=True),
        Field("chroma_subsampling", string, nullable=True),
        Field("color_space", string, nullable=True),
    ),
)


def _optional(name: str, parse: Any, url: bool = False) -> Field:
    return Field(name, parse, nullable=True, required=False, url=url)


RESTORED_VIDEO = ObjectSpec(
    "RestoredVideo",
    (
        Field("job_id", big_integer, nullable=True),
        Field("preview_videos", preview_videos, nullable=True, url=True),
        Field("name", string),
        Field("created_at", date_time),
        _optional("deleted", date_time),
        _optional("framerate", number),
        _optional("n_frames", integer),
        _optional("bitrate", big_integer),
        _optional("codec_id", string),
        _optional("bit_depth", integer),
        _optional("chroma_subsampling", string),
        _optional("color_space", string),
        _optional("size", big_integer),
        _optional("file", string, url=True),
        _optional("thumbnail", string, url=True),
        Field("width", integer),
        Field("height", integer),
        _optional("quality_score", integer),
        Field("owner", big_integer),
    ),
)

JOB = ObjectSpec(
    "Job",
    (
        Field("started", date_time),
        Field("preview", boolean),
        Field("description", string),
        Field("cost_usd", cost),
        Field("status", integer),
        Field("eta_s", number),
        Field("finished", date_time, nullable=True),
        Field("processing_progress", number),
        Field("input_video", VIDEO.nested, nullable=True, nested=True),
        Field("output_video", RESTORED_VIDEO.nested, nullable=True, nested=True),
        Field("ml_models", many(ML_MODEL), nested=True),
        Field("grain", number),
        Field("codec", string),
        Field("output_resolution", integer),
        Field("comparison", boolean),
        Field("stabilization_smoothing", integer),
        Field("fps_interpolation_factor", number),
        Field("playback_speed", number),
        Field("sharpen_strength", number),
        Field("start_frame", integer, nullable=True),
        Field("end_frame", integer, nullable=True),
    ),
)
