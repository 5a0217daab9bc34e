"""The create-option table (django_tensorpix.options) is TensorPix's schema, field for field."""

from __future__ import annotations

from typing import Any

import pytest

from django_tensorpix.models import REQUESTED_OPTION_FIELDS
from django_tensorpix.options import (
    JOB_OPTIONS,
    OPTIONS_BY_NAME,
    VIDEO_URL_MAX_LENGTH,
    check_job_options,
)
from tests.openapi_schema import load_upstream_schema

# CreateJob/EnhanceVideo properties that are not options: the job's subject or read-only.
NOT_OPTIONS = {"id", "input_video", "output_video", "owner", "ml_models", "video_url", "cost_usd"}
TYPES = {"integer": int, "number": float, "boolean": bool}


def component(name: str) -> dict[str, Any]:
    schemas: dict[str, Any] = load_upstream_schema()["components"]["schemas"]
    return schemas[name]


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    """A property with its ``allOf``/``oneOf`` enum references folded in."""
    merged = {key: value for key, value in node.items() if key not in ("allOf", "oneOf")}
    enum: list[Any] = []
    for ref in node.get("allOf", []) + node.get("oneOf", []):
        target = component(ref["$ref"].rsplit("/", 1)[1])
        enum += target.get("enum", [])
        merged.setdefault("type", target.get("type"))
    if enum:
        merged["enum"] = enum
    return merged


def writable(name: str) -> dict[str, dict[str, Any]]:
    properties = component(name)["properties"]
    return {
        key: resolved(value)
        for key, value in properties.items()
        if key not in NOT_OPTIONS and not value.get("readOnly")
    }


def test_option_names_are_the_schemas_and_the_models():
    create, from_url = writable("CreateJob"), writable("EnhanceVideo")
    assert set(OPTIONS_BY_NAME) == set(create)
    assert {spec.name for spec in JOB_OPTIONS if spec.from_url} == set(from_url)
    assert set(REQUESTED_OPTION_FIELDS) == set(OPTIONS_BY_NAME)


@pytest.mark.parametrize("spec", JOB_OPTIONS, ids=lambda spec: spec.name)
def test_option_bounds_and_enums_are_the_schemas(spec):
    schema = writable("CreateJob")[spec.name]
    if spec.from_url:
        other = writable("EnhanceVideo")[spec.name]
        for key in ("type", "minimum", "maximum", "enum"):
            assert other.get(key) == schema.get(key), key
    types = schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")]
    assert spec.nullable == ("null" in types)
    if "enum" in schema:
        assert spec.choices is not None
        assert sorted(map(str, spec.choices)) == sorted(map(str, schema["enum"]))
    else:
        assert spec.choices is None
        assert spec.kind is TYPES[str(next(t for t in types if t != "null"))]
        assert spec.minimum == schema.get("minimum")
        assert spec.maximum == schema.get("maximum")


def test_video_url_length_is_the_schemas():
    assert component("EnhanceVideo")["properties"]["video_url"]["maxLength"] == VIDEO_URL_MAX_LENGTH


@pytest.mark.parametrize("spec", [s for s in JOB_OPTIONS if s.maximum is not None], ids=str)
def test_each_bound_is_enforced_at_its_edge(spec):
    assert spec.minimum is not None
    assert spec.maximum is not None
    edge = spec.kind(spec.maximum)
    assert check_job_options({spec.name: edge}, from_url=False) == ({spec.name: edge}, {})
    too_big = spec.maximum + (1 if spec.kind is int else 0.5)
    too_small = spec.minimum - (1 if spec.kind is int else 0.05)
    for value in (spec.kind(too_big), spec.kind(too_small)):
        _cleaned, errors = check_job_options({spec.name: value}, from_url=False)
        assert list(errors) == [spec.name], value
