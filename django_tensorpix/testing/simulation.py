"""How much a job costs, how long it runs and what it produces.

Plausible, deterministic formulas rather than TensorPix's real ones (which are not
published): cost grows with filter weights, minutes and pixels; output geometry follows
``output_resolution`` or the Super Resolution factor; output sizes stay small so tests
can download them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from .catalogue import FPS_INTERPOLATION, HD, SLOW_MOTION, SUPER_RESOLUTION, MLModel

CREDITS_PER_MINUTE = Decimal("2")
MAX_COST = Decimal("999999.9999")
FOUR_PLACES = Decimal("0.0001")
PREVIEW_SECONDS = 10
MIN_DIMENSION, MAX_DIMENSION = 64, 8192

FAIL_MARKER = re.compile(r"(?<![a-z])fail(?![a-z])", re.IGNORECASE)
HEIGHT_HINT = re.compile(r"(?<!\d)(240|360|480|540|576|720|1080|1440|2160|4320)p(?![a-z])", re.I)
UHD_HINT = re.compile(r"(?<![a-z0-9])4k(?![a-z0-9])", re.IGNORECASE)
NOT_VIDEO_SUFFIXES = frozenset({".html", ".htm", ".jpg", ".jpeg", ".png", ".gif", ".txt", ".pdf"})
UNSUPPORTED_HOSTS = ("youtube.com", "youtu.be", "vimeo.com", "instagram.com", "tiktok.com")
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})

CODEC_IDS = {"libx264": "avc1", "libx265": "hev1", "prores_ks": "apcn"}


def wants_failure(text: str) -> bool:
    """The demo's deterministic failure switch: the word "fail" in a URL or file name."""
    return bool(FAIL_MARKER.search(text))


def resolution_hint(text: str, default: tuple[int, int] = (1280, 720)) -> tuple[int, int]:
    """A 16:9 size from a "1080p" or "4k" token in a URL or file name."""
    if UHD_HINT.search(text):
        return 3840, 2160
    match = HEIGHT_HINT.search(text)
    if not match:
        return default
    height = int(match.group(1))
    return _even(height * 16 / 9), height


def video_url_problem(url: str) -> str | None:
    """Why TensorPix would refuse this URL as a video source, or ``None``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == name or host.endswith("." + name) for name in UNSUPPORTED_HOSTS):
        return "Videos hosted on YouTube, Vimeo, Instagram or TikTok are not supported."
    if PurePosixPath(parts.path).suffix.lower() in NOT_VIDEO_SUFFIXES:
        return "The URL could not be parsed as a video."
    return None


def is_video_file(filename: str, content_type: str) -> bool:
    return content_type.startswith("video/") or PurePosixPath(filename).suffix.lower() in (
        VIDEO_SUFFIXES
    )


def frames_to_process(n_frames: int, framerate: float, options: dict) -> int:
    start = options["start_frame"] or 0
    if options["preview"]:
        return max(min(n_frames - start, round(PREVIEW_SECONDS * framerate)), 1)
    end = min(options["end_frame"] or n_frames, n_frames)
    return max(end - start, 1)


def job_cost(models: tuple[MLModel, ...], pixels: int, minutes: float, preview: bool) -> Decimal:
    """Credits a job costs; free previews cost nothing."""
    if preview:
        return Decimal("0.0000")
    weight = Decimal(str(sum(model.cost_weight for model in models)))
    size_factor = max(Decimal(pixels) / HD, Decimal("0.25"))
    cost = weight * Decimal(str(minutes)) * size_factor * CREDITS_PER_MINUTE
    return min(max(cost, Decimal("0.01")), MAX_COST).quantize(FOUR_PLACES, ROUND_HALF_UP)


def processing_seconds(models: tuple[MLModel, ...], pixels: int, frames: int) -> float:
    """Simulated GPU time: about 8 minutes for 30 s of 720p through one filter."""
    weight = sum(model.cost_weight for model in models)
    return min(60.0 + frames * weight * max(pixels / HD, 0.25) * 0.5, 6 * 3600.0)


@dataclass(frozen=True)
class OutputShape:
    width: int
    height: int
    framerate: float
    n_frames: int
    fps_interpolation_factor: float


def output_shape(
    models: tuple[MLModel, ...],
    width: int,
    height: int,
    framerate: float,
    frames: int,
    options: dict,
) -> OutputShape:
    tasks = {model.task: model for model in models}
    if options["output_resolution"] != -1:
        out_width = options["output_resolution"]
        out_height = _even(height * out_width / width)
    elif SUPER_RESOLUTION in tasks:
        factor = tasks[SUPER_RESOLUTION].upscale_factor
        out_width, out_height = width * factor, height * factor
    else:
        out_width, out_height = width, height
    scale = min(1.0, MAX_DIMENSION / max(out_width, out_height))
    out_width = max(_even(out_width * scale), MIN_DIMENSION)
    out_height = max(_even(out_height * scale), MIN_DIMENSION)
    fps_factor = 1.0
    target_fps = options["target_fps"]
    if FPS_INTERPOLATION in tasks and target_fps and target_fps > framerate:
        fps_factor = round(target_fps / framerate, 4)
    out_frames = frames * fps_factor
    if SLOW_MOTION in tasks:
        out_frames /= options["playback_speed"]
    return OutputShape(
        out_width,
        out_height,
        round(framerate * fps_factor, 3),
        max(round(out_frames), 1),
        fps_factor,
    )


def output_size(shape: OutputShape, size_range: tuple[int, int]) -> int:
    """A small, deterministic byte size inside ``size_range`` for an output video."""
    low, high = size_range
    spread = max(high - low, 1)
    return low + (shape.n_frames * shape.width * shape.height // 1000) % spread


def bitrate(size: int, n_frames: int, framerate: float) -> int:
    seconds = max(n_frames / framerate, 0.001)
    return max(round(size * 8 / seconds), 1)


def output_name(input_name: str, container: str) -> str:
    stem = input_name.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "video"
    return f"{stem}_enhanced.{container}"


def _even(value: float) -> int:
    return int(round(value / 2) * 2)
