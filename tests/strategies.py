"""TensorPix payloads for the sync tests: fixed examples, and hypothesis strategies.

The strategies are built from the upstream schema (``tests/data/upstream-openapi-2025-07-04.yaml``):
property names, types, nullability, required fields and enums are read from it, so a
field added to the schema is generated without touching this file. On top of the schema
they add what TensorPix may really send: unknown enum values, fields it adds later,
boundary values (``bitrate`` 2**63-1) and NUL characters.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

SCHEMA_PATH = Path(__file__).parent / "data" / "upstream-openapi-2025-07-04.yaml"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# Columns the sync stores as signed 64-bit integers; every other integer is 32-bit.
BIG_INTEGER_FIELDS = frozenset({"id", "bitrate", "size", "max_resolution", "owner", "job_id"})

ML_MODEL = {
    "id": 7,
    "name": "400% AI Upscale",
    "task": 1,
    "cost_weight": 2.0,
    "upscale_factor": 4,
    "fps_boost_factor": 1,
    "priority": 80,
    "max_resolution": 921600,
}


def video_payload(**overrides: Any) -> dict[str, Any]:
    payload = {
        "id": 31,
        "name": "holiday.mp4",
        "width": 1280,
        "height": 720,
        "created_at": "2025-07-01T10:00:00Z",
        "n_frames": 976,
        "framerate": 29.97,
        "size": 14_000_000,
        "file": "https://storage.example.com/videos/31/file?X-Signature=aaa",
        "owner": "developer@example.com",
        "thumbnail": "https://storage.example.com/videos/31/thumb?X-Signature=aaa",
        "external_url": None,
        "bitrate": 1_200_000,
        "codec_id": "avc1",
        "bit_depth": 8,
        "chroma_subsampling": "yuv420p",
        "color_space": "bt709",
    }
    return {**payload, **overrides}


def restored_video_payload(**overrides: Any) -> dict[str, Any]:
    signature = overrides.pop("signature", "aaa")
    base = "https://storage.example.com/restored/74"
    payload = {
        "id": 74,
        "job_id": 52,
        "preview_videos": {
            "before_video": f"{base}/before?X-Signature={signature}",
            "after_video": f"{base}/after?X-Signature={signature}",
        },
        "name": "holiday_enhanced.mp4",
        "created_at": "2025-07-01T10:20:00.250000Z",
        "deleted": None,
        "framerate": 29.97,
        "n_frames": 976,
        "bitrate": 9_223_372_036_854_775_807,
        "codec_id": "hev1",
        "bit_depth": 10,
        "chroma_subsampling": "yuv420p10le",
        "color_space": "bt709",
        "size": 400_000_000_000,
        "file": f"{base}/file?X-Signature={signature}",
        "thumbnail": f"{base}/thumbnail?X-Signature={signature}",
        "width": 5120,
        "height": 2880,
        "quality_score": None,
        "owner": 4242,
    }
    return {**payload, **overrides}


def job_payload(**overrides: Any) -> dict[str, Any]:
    """A finished job with its input, output and two ML models; override any field."""
    payload = {
        "id": 52,
        "started": "2025-07-01T10:00:00Z",
        "preview": False,
        "description": "holiday.mp4: 400% AI Upscale, Denoise",
        "cost_usd": "3.4702",
        "status": 2,
        "eta_s": 0.0,
        "finished": "2025-07-01T10:20:00.250000Z",
        "processing_progress": 1.0,
        "input_video": video_payload(),
        "output_video": restored_video_payload(),
        "ml_models": [ML_MODEL, {**ML_MODEL, "id": 8, "name": "Denoise", "task": 3}],
        "grain": 0.0,
        "codec": "libx265",
        "output_resolution": -1,
        "comparison": False,
        "stabilization_smoothing": 10,
        "fps_interpolation_factor": 1.0,
        "playback_speed": 1.0,
        "sharpen_strength": 0.0,
        "start_frame": None,
        "end_frame": None,
    }
    return {**payload, **overrides}


def processing_job_payload(**overrides: Any) -> dict[str, Any]:
    fields = {
        "status": 1,
        "processing_progress": 0.4,
        "eta_s": 120.5,
        "finished": None,
        "output_video": None,
    }
    return job_payload(**{**fields, **overrides})


def page_of_jobs(n: int, *, first_id: int = 1000) -> list[dict[str, Any]]:
    """``n`` finished jobs, each with its own input and output video."""
    page = []
    for offset in range(n):
        job_id = first_id + offset
        page.append(
            job_payload(
                id=job_id,
                input_video=video_payload(id=job_id + 100_000),
                output_video=restored_video_payload(id=job_id + 200_000, job_id=job_id),
            )
        )
    return page


# -- hypothesis ----------------------------------------------------------------------


@cache
def components() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())
    return schema["components"]["schemas"]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and single-item ``allOf`` (how drf-spectacular wraps enums)."""
    while True:
        if "$ref" in schema:
            schema = {**components()[schema["$ref"].rsplit("/", 1)[1]], **_without(schema, "$ref")}
        elif len(schema.get("allOf", ())) == 1:
            schema = {**resolve(schema["allOf"][0]), **_without(schema, "allOf")}
        else:
            return schema


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}


def is_nullable(schema: dict[str, Any]) -> bool:
    """Both spellings the upstream schema mixes: 3.1 type arrays and 3.0 ``nullable``."""
    types = schema.get("type")
    return schema.get("nullable", False) or (isinstance(types, list) and "null" in types)


def json_type(schema: dict[str, Any]) -> str:
    types = schema.get("type", "object")
    if isinstance(types, list):
        return next(t for t in types if t != "null")
    return str(types)


# Nested objects: Job.output_video is null until the job finishes, although the schema
# says otherwise (a documented TensorPix quirk), so the strategies may make it null.
QUIRK_NULLABLE = frozenset({("Job", "output_video")})


def scalar(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values TensorPix may send for one scalar field, boundaries and unknown enums included."""
    kind = json_type(schema)
    if "enum" in schema:
        known = st.sampled_from([value for value in schema["enum"] if value is not None])
        unknown = st.integers(*INT32) if kind == "integer" else text()
        return st.one_of(known, unknown)
    if kind == "integer":
        low, high = INT64 if name in BIG_INTEGER_FIELDS else INT32
        return st.one_of(st.sampled_from([low, high, 0, -1, 1]), st.integers(low, high))
    if kind == "number":
        finite = st.floats(allow_nan=False, allow_infinity=False)
        return st.one_of(finite, st.integers(-(2**53), 2**53))
    if kind == "boolean":
        return st.booleans()
    if schema.get("format") == "date-time":
        return date_times()
    if schema.get("format") == "decimal":
        return costs()
    if schema.get("format") == "uri":
        return urls()
    return text()


def text() -> st.SearchStrategy[str]:
    """Any text PostgreSQL can store: no NUL, no lone surrogate (those are tested apart)."""
    return st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))


def urls() -> st.SearchStrategy[str]:
    query = st.text("abcdef0123456789", min_size=1, max_size=2000)
    return st.builds(
        lambda path, sig: f"https://storage.example.com/{path}?X-Signature={sig}",
        st.text("abcxyz/-_.", max_size=40),
        query,
    )


def date_times() -> st.SearchStrategy[str]:
    """ISO 8601 as DRF writes it: ``Z`` or an offset, with or without microseconds."""
    zones = st.sampled_from(
        [
            dt.UTC,
            dt.timezone(dt.timedelta(hours=2)),
            dt.timezone(dt.timedelta(hours=-9, minutes=-30)),
        ]
    )
    moments = st.datetimes(
        min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=zones
    )
    extremes = st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"])
    return st.one_of(moments.map(lambda m: m.isoformat().replace("+00:00", "Z")), extremes)


def costs() -> st.SearchStrategy[str]:
    """Strings matching ``^-?\\d{0,6}(?:\\.\\d{0,4})?$`` with at least one digit."""
    amounts = st.decimals(
        min_value=Decimal("-999999.9999"),
        max_value=Decimal("999999.9999"),
        places=4,
        allow_nan=False,
        allow_infinity=False,
    )
    extremes = st.sampled_from(["999999.9999", "-999999.9999", "0", ".5", "7.", "-0"])
    return st.one_of(amounts.map(lambda d: format(d, "f")), extremes)


@st.composite
def payloads(draw: st.DrawFn, component: str, nulls: str = "mixed") -> dict[str, Any]:
    """A payload of one schema component; ``nulls``: ``"all"``, ``"none"`` or ``"mixed"``.

    Optional fields may be left out (in ``"mixed"``), and fields unknown to the schema may
    be added (TensorPix adding fields later).
    """
    schema = components()[component]
    required = set(schema.get("required", ()))
    payload: dict[str, Any] = {}
    for name, raw_schema in schema["properties"].items():
        field_schema = resolve(raw_schema)
        nullable = is_nullable(field_schema) or (component, name) in QUIRK_NULLABLE
        if name not in required and nulls == "mixed" and draw(st.booleans()):
            continue
        if nullable and (nulls == "all" or (nulls == "mixed" and draw(st.booleans()))):
            payload[name] = None
            continue
        payload[name] = draw(value_of(name, raw_schema, nulls))
    keys = st.text("abcdefghij_", min_size=1, max_size=12).map(lambda key: f"x_{key}")
    payload.update(draw(st.dictionaries(keys, json_values(), max_size=2)))
    return payload


def value_of(name: str, raw_schema: dict[str, Any], nulls: str) -> st.SearchStrategy[Any]:
    schema = resolve(raw_schema)
    if json_type(schema) == "array":
        component = ref_name(schema["items"])
        if component:
            return st.lists(payloads(component, nulls), max_size=3)
        return st.lists(scalar(name, resolve(schema["items"])), max_size=3)
    component = ref_name(raw_schema)
    if component and "properties" in schema:
        return payloads(component, nulls)
    return scalar(name, schema)


def ref_name(schema: dict[str, Any]) -> str:
    """The component a field points at, directly or through a one-item ``allOf``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    if len(schema.get("allOf", ())) == 1:
        return ref_name(schema["allOf"][0])
    return ""


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        text(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(text(), children, max_size=3)
        ),
        max_leaves=6,
    )


def with_unique_ids(job: dict[str, Any], seed: int) -> dict[str, Any]:
    """Give every nested object of a generated job its own id, as TensorPix would."""
    job = copy.deepcopy(job)
    job["id"] = seed
    if isinstance(job.get("input_video"), dict):
        job["input_video"]["id"] = seed + 1_000_000
    if isinstance(job.get("output_video"), dict):
        job["output_video"]["id"] = seed + 2_000_000
    for index, model in enumerate(job.get("ml_models") or []):
        model["id"] = seed * 10 + index + 3_000_000
    return job


# Fields of a Job payload that are nested objects, by component.
NESTED = {"input_video": "Video", "output_video": "RestoredVideo", "ml_models": "MLModelList"}


@st.composite
def broken_jobs(draw: st.DrawFn, seed: int = 1) -> tuple[dict[str, Any], str]:
    """A valid job (ids from ``seed``) with one field broken; returns it and the field's path."""
    job = with_unique_ids(draw(payloads("Job", "none")), seed=seed)
    places = ["", "input_video"] + (["output_video"] if job["output_video"] else [])
    place = draw(st.sampled_from(places))
    target = job[place] if place else job
    component = {"": "Job", "input_video": "Video", "output_video": "RestoredVideo"}[place]
    schema = components()[component]
    names = sorted(name for name in target if name in schema["properties"] and name not in NESTED)
    name = draw(st.sampled_from(names))
    if name == "preview_videos":
        name = "name"
    kind = json_type(resolve(schema["properties"][name]))
    how = draw(st.sampled_from(["nul", "range", "type", "missing"]))
    if how == "nul" and kind == "string":
        target[name] = draw(st.text(max_size=3)) + "\x00"
    elif how == "range" and kind == "integer":
        bound = 2**63 if name in BIG_INTEGER_FIELDS else 2**31
        target[name] = draw(st.sampled_from([bound, -bound - 1, 2**200]))
    elif how == "missing" and name in schema.get("required", ()):
        del target[name]
    else:
        target[name] = draw(st.sampled_from([[], {"value": 1}]))
    return job, f"{place}.{name}" if place else name


@dataclass
class MixedPage:
    """A page of jobs, some valid (their ids in ``valid``), some broken (seed -> field path)."""

    jobs: list[dict[str, Any]]
    valid: set[int] = field(default_factory=set)
    broken: dict[int, str] = field(default_factory=dict)


@st.composite
def mixed_job_pages(draw: st.DrawFn, max_size: int = 6) -> MixedPage:
    """A page of up to ``max_size`` jobs in any order, each valid or broken in one field."""
    page = MixedPage(jobs=[])
    for index in range(draw(st.integers(1, max_size))):
        seed = index + 1
        if draw(st.booleans()):
            page.jobs.append(with_unique_ids(draw(payloads("Job", "mixed")), seed=seed))
            page.valid.add(seed)
        else:
            job, path = draw(broken_jobs(seed=seed))
            page.jobs.append(job)
            page.broken[seed] = path
    return page
