"""Bulk creation of realistic jobs straight in the state, for benchmarks and demos.

Goes around HTTP and Credits on purpose: 100,000 jobs must seed in seconds.
"""

from __future__ import annotations

import random
from typing import Any

from . import simulation
from .records import CANCELED, FAILED, FINISHED, IN_QUEUE, PROCESSING, Job, Video
from .state import EmulatorState
from .validation import COMMON_FIELDS

SPACING_S = 45.0
TERMINAL_WEIGHTS = ((FINISHED, 85), (FAILED, 8), (CANCELED, 7))
SIZES = ((854, 480), (1280, 720), (1920, 1080))
CODEC_VARIANTS = ("libx264", "libx264", "libx265", "prores_ks")


def seed_jobs(state: EmulatorState, n: int, status: int | None) -> list[int]:
    """Create ``n`` jobs, oldest first; see ``TensorPixEmulator.seed_jobs``."""
    with state.lock:
        if not state.ml_models:
            raise ValueError("seeding jobs needs ML models in the catalogue")
        rng = random.Random(f"seed-jobs:{state.seed}:{len(state.jobs)}")
        now = state.settle()
        statuses = _statuses(rng, n, status, state.max_active_jobs)
        models_by_task: dict[int, list[Any]] = {}
        for model in state.ml_models.values():
            models_by_task.setdefault(model.task, []).append(model)
        option_variants = [_options(codec) for codec in CODEC_VARIANTS]
        ids = []
        for index, job_status in enumerate(statuses):
            job = _job(state, rng, models_by_task, option_variants, now, n - index, job_status)
            state.adopt_job(job)
            ids.append(job.id)
        return ids


def _statuses(rng: random.Random, n: int, status: int | None, max_active: int) -> list[int]:
    if status is not None:
        return [status] * n
    processing = min(n // 20, max_active)
    queued = min(n // 50, 3)
    terminal = n - processing - queued
    population = [value for value, _ in TERMINAL_WEIGHTS]
    weights = [weight for _, weight in TERMINAL_WEIGHTS]
    mix = rng.choices(population, weights, k=terminal)
    return mix + [PROCESSING] * processing + [IN_QUEUE] * queued


def _options(codec: str) -> dict[str, Any]:
    options = {name: spec.default for name, spec in COMMON_FIELDS.items()}
    options.update(codec=codec, qscale=11, prores_profile=-1, target_fps=30.0)
    if codec == "prores_ks":
        options["container"] = "mov"
    return options


def _job(
    state: EmulatorState,
    rng: random.Random,
    models_by_task: dict[int, list[Any]],
    option_variants: list[dict[str, Any]],
    now: float,
    age_rank: int,
    status: int,
) -> Job:
    tasks = rng.sample(sorted(models_by_task), k=min(rng.randint(1, 3), len(models_by_task)))
    models = tuple(rng.choice(models_by_task[task]) for task in tasks)
    smallest_limit = min(model.max_resolution for model in models)
    fitting = [size for size in SIZES if size[0] * size[1] <= smallest_limit] or [(640, 360)]
    width, height = rng.choice(fitting)
    n_frames = rng.randint(150, 1800)
    video_id = state.new_video_id()
    video = Video(
        id=video_id,
        name=f"archive-{video_id}.mp4",
        created_at=0.0,
        uploaded=False,
        size=None,
        ready_at=0.0,
        external_url=f"https://media.example.com/archive/{video_id}.mp4",
        width=width,
        height=height,
        n_frames=n_frames,
    )
    options = rng.choice(option_variants)
    pixels = width * height
    duration = simulation.processing_seconds(models, pixels, n_frames)
    if status == PROCESSING:
        created = now - 60.0 - age_rank
        started = now - rng.uniform(1.0, duration * 0.9)
    elif status == IN_QUEUE:
        created = started = now - age_rank
    else:
        created = now - 4 * 3600.0 - duration - age_rank * SPACING_S
        started = created + rng.uniform(2.0, 60.0)
    video.created_at = video.ready_at = created
    job = Job(
        id=state.new_job_id(),
        created_at=created,
        input_video=video,
        ml_models=models,
        options=options,
        cost=simulation.job_cost(models, pixels, n_frames / 30.0 / 60, preview=False),
        duration=duration,
        eligible_at=created,
        description=f"{video.name}: " + ", ".join(model.name for model in models),
        status=status,
        will_fail=status == FAILED,
    )
    if status != IN_QUEUE:
        job.processing_started_at = started
    if status in (FINISHED, FAILED, CANCELED):
        fraction = {FINISHED: 1.0, FAILED: 0.5, CANCELED: rng.uniform(0.05, 0.9)}[status]
        job.ended_at = started + duration * fraction
        job.progress_at_end = round(fraction, 4)
    return job
