"""A realistic AI filter (ML model) catalogue: at least one model per TaskEnum value.

Names and weights imitate TensorPix's public filter list. ``max_resolution`` is an input
pixel count (width x height): the upstream schema says "in pixels" and gives 4x upscaling
of anything above 1280x720 as the refused case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HD = 1280 * 720
FULL_HD = 1920 * 1080
UHD = 3840 * 2160
DCI_8K = 8192 * 4320

TASK_NAMES = {
    1: "Super Resolution",
    2: "Film damage",
    3: "Denoise",
    4: "Sharpen",
    5: "VHS Prettify",
    6: "Dropouts Buster",
    7: "Auto Color Balance",
    8: "Decompressor",
    9: "Deinterlace",
    10: "FPS Interpolation",
    11: "Slow Motion",
    12: "Face Enhance",
    13: "Stabilization",
    14: "Audio Denoise",
    15: "Low Light Enhance",
}

SUPER_RESOLUTION = 1
FPS_INTERPOLATION = 10
SLOW_MOTION = 11


@dataclass(frozen=True, slots=True)
class MLModel:
    """One AI filter as ``GET /api/ml-models/`` lists it (``MLModelList``)."""

    id: int
    name: str
    task: int
    cost_weight: float
    upscale_factor: int = 1
    fps_boost_factor: int = 1
    priority: int = 50
    max_resolution: int = DCI_8K

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "task": self.task,
            "cost_weight": self.cost_weight,
            "upscale_factor": self.upscale_factor,
            "fps_boost_factor": self.fps_boost_factor,
            "priority": self.priority,
            "max_resolution": self.max_resolution,
        }


DEFAULT_CATALOGUE: tuple[MLModel, ...] = (
    MLModel(1, "200% AI Upscale", 1, 1.0, upscale_factor=2, priority=80, max_resolution=FULL_HD),
    MLModel(2, "400% AI Upscale", 1, 2.0, upscale_factor=4, priority=80, max_resolution=HD),
    MLModel(3, "Film Damage Restoration", 2, 1.2, priority=10, max_resolution=FULL_HD),
    MLModel(4, "AI Denoise", 3, 0.6, priority=20, max_resolution=UHD),
    MLModel(5, "AI Denoise Strong", 3, 0.9, priority=20, max_resolution=UHD),
    MLModel(6, "AI Sharpen", 4, 0.3, priority=90, max_resolution=UHD),
    MLModel(7, "VHS Prettify", 5, 0.8, priority=15, max_resolution=FULL_HD),
    MLModel(8, "Dropouts Buster", 6, 0.7, priority=12, max_resolution=FULL_HD),
    MLModel(9, "Auto Color Balance", 7, 0.2, priority=60, max_resolution=UHD),
    MLModel(10, "Decompressor", 8, 0.5, priority=18, max_resolution=UHD),
    MLModel(11, "Deinterlace", 9, 0.3, priority=5, max_resolution=FULL_HD),
    MLModel(12, "FPS Boost", 10, 1.1, fps_boost_factor=2, priority=95, max_resolution=UHD),
    MLModel(13, "Slow Motion", 11, 1.3, fps_boost_factor=2, priority=96, max_resolution=UHD),
    MLModel(14, "Face Enhance", 12, 0.9, priority=70, max_resolution=FULL_HD),
    MLModel(15, "AI Stabilization", 13, 0.7, priority=8, max_resolution=UHD),
    MLModel(16, "Audio Denoise", 14, 0.1, priority=99, max_resolution=DCI_8K),
    MLModel(17, "Low Light Enhance", 15, 0.6, priority=25, max_resolution=UHD),
    MLModel(18, "Low Light Enhance Pro", 15, 1.0, priority=25, max_resolution=FULL_HD),
)
