"""The job options a create request accepts, with TensorPix's bounds and enums (one table).

Read from TensorPix's schema (``CreateJob`` for uploaded videos, ``EnhanceVideo`` for
``/api/jobs/from-url/``; snapshot 2025-07-04 in tests/data/); a test pins it to that file.
The shape matches the option table of :mod:`django_tensorpix.services`, which replaces this
module once submission lands: the serializer builds its fields from whichever table is there.
"""

from __future__ import annotations

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
# EnhanceVideo.video_url: a URI of 1 to 2048 characters.
VIDEO_URL_MAX_LENGTH = 2048


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
