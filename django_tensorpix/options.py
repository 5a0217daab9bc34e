"""The options a job-creating request accepts, with TensorPix's bounds and enums: one table.

Read from TensorPix's schema (``CreateJob`` for ``POST /api/jobs/``, ``EnhanceVideo`` for
``POST /api/jobs/from-url/``, snapshot of 2025-07-04 in tests/data/); a test pins this table
to that file, so a bound changes here and nowhere else. The enums come from
:mod:`django_tensorpix.enums`, which mirror the schema's enums value for value.

:func:`check_job_options` is what services use before writing a row: it returns the cleaned
options or a per-field dict of messages, never raising on a single bad field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django_tensorpix.enums import (
    ChromaSubsampling,
    Codec,
    Container,
    OutputResolution,
    ProresProfile,
)

INT32_MAX = 2147483647


@dataclass(frozen=True)
class OptionSpec:
    """One create option: its type, bounds, allowed values, and whether from-url takes it."""

    name: str
    kind: type  # int, float, bool or str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    from_url: bool = True


JOB_OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("codec", str, choices=tuple(Codec.values)),
    OptionSpec("crf", int, minimum=0, maximum=51),
    # The from-url endpoint has no ProRes settings (EnhanceVideo lacks them).
    OptionSpec("qscale", int, minimum=0, maximum=32, from_url=False),
    OptionSpec("container", str, choices=tuple(Container.values)),
    # ChromaSubsamplingEnum or BlankEnum: "" means "TensorPix's default".
    OptionSpec("chroma_subsampling", str, choices=(*ChromaSubsampling.values, "")),
    OptionSpec("preview", bool),
    OptionSpec("start_frame", int, minimum=0, maximum=INT32_MAX, nullable=True),
    OptionSpec("end_frame", int, minimum=1, maximum=INT32_MAX, nullable=True),
    OptionSpec("output_resolution", int, choices=tuple(OutputResolution.values)),
    OptionSpec("grain", float, minimum=0, maximum=1),
    OptionSpec("comparison", bool),
    OptionSpec("stabilization_smoothing", int, minimum=0, maximum=40),
    OptionSpec("target_fps", float, minimum=1, maximum=240),
    OptionSpec("playback_speed", float, minimum=0.1, maximum=1),
    OptionSpec("sharpen_strength", float, minimum=0, maximum=10),
    OptionSpec("prores_profile", int, choices=tuple(ProresProfile.values), from_url=False),
)
OPTIONS_BY_NAME = {spec.name: spec for spec in JOB_OPTIONS}
# EnhanceVideo.video_url: a URI of 1 to 2048 characters.
VIDEO_URL_MAX_LENGTH = 2048


def check_job_options(
    options: Mapping[str, Any], *, from_url: bool
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``(cleaned, errors)``: options converted to their types, and messages per field.

    Unknown names, and ``qscale``/``prores_profile`` on a from-url job, are errors (TensorPix
    would silently ignore them, and the user would not get what they asked for). ``None``
    means "not set" except for ``start_frame``/``end_frame``, where it is TensorPix's null.
    """
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in options.items():
        spec = OPTIONS_BY_NAME.get(name)
        if spec is None:
            errors[name] = [f"Unknown option {_shown(name)}."]
            continue
        if from_url and not spec.from_url:
            errors[name] = [f"{name} is only accepted for uploaded files, not for a video URL."]
            continue
        if value is None:
            continue
        try:
            cleaned[name] = _clean(spec, value)
        except ValueError as error:
            errors[name] = [str(error)]
    start, end = cleaned.get("start_frame"), cleaned.get("end_frame")
    if start is not None and end is not None and end <= start:
        errors.setdefault("end_frame", []).append("end_frame must be after start_frame.")
    return cleaned, errors


def _clean(spec: OptionSpec, value: Any) -> Any:
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise ValueError("Must be true or false.")
        return value
    if spec.kind is str:
        if not isinstance(value, str):
            raise ValueError("Must be a string.")
        converted: Any = value
    elif spec.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("Must be a whole number.")
        converted = value
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Must be a number.")
        if not math.isfinite(value):
            raise ValueError("Must be a finite number.")
        converted = float(value)
    if spec.choices is not None and converted not in spec.choices:
        allowed = ", ".join(repr(choice) for choice in spec.choices)
        raise ValueError(f"{_shown(converted)} is not one of {allowed}.")
    if spec.minimum is not None and converted < spec.minimum:
        raise ValueError(f"Must be at least {spec.minimum:g}.")
    if spec.maximum is not None and converted > spec.maximum:
        raise ValueError(f"Must be at most {spec.maximum:g}.")
    return converted


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a message must not echo a huge input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
