"""Validate payloads against TensorPix's published OpenAPI schema (tests/data/).

The upstream file is drf-spectacular output that mixes OpenAPI 3.0 ``nullable: true``
with OpenAPI 3.1 type arrays; both are turned into JSON Schema 2020-12 here. Formats are
checked (``uri``, ``date-time``, ``email`` and the schema's ``decimal``), which
``jsonschema`` skips unless given a ``FormatChecker``.

Usage::

    from tests.openapi_schema import validate
    validate("Job", payload)            # raises jsonschema.ValidationError
    validate("Job", payload, strict=True)   # also refuses fields the schema lacks
"""

from __future__ import annotations

import copy
import functools
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).parent / "data" / "upstream-openapi-2025-07-04.yaml"
CHECKED_FORMATS = ("uri", "date-time", "email", "decimal")


@functools.cache
def load_upstream_schema() -> dict[str, Any]:
    """The upstream OpenAPI document, parsed (cached; do not mutate)."""
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()

    @checker.checks("decimal", raises=(InvalidOperation, TypeError))
    def is_decimal(value: object) -> bool:
        if not isinstance(value, str):
            return True
        return Decimal(value).is_finite()

    missing = [name for name in CHECKED_FORMATS if name not in checker.checkers]
    if missing:
        raise RuntimeError(
            f"format checkers missing: {missing}; install rfc3987 and rfc3339-validator"
        )
    return checker


def _to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable: true`` into JSON Schema null types, recursively."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False):
        if "type" in converted:
            types = (
                converted["type"] if isinstance(converted["type"], list) else [converted["type"]]
            )
            converted["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in converted and None not in converted["enum"]:
                converted["enum"] = [*converted["enum"], None]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def _forbid_unknown_properties(node: Any) -> Any:
    if isinstance(node, list):
        return [_forbid_unknown_properties(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _forbid_unknown_properties(value) for key, value in node.items()}
    if "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    return converted


@functools.cache
def _components(strict: bool) -> dict[str, Any]:
    schemas = _to_json_schema(copy.deepcopy(load_upstream_schema()["components"]["schemas"]))
    # Known TensorPix quirk: Job.output_video is declared a non-nullable RestoredVideo,
    # but it is null until the job is Finished (and stays null for Failed/Canceled jobs).
    job_output = schemas["Job"]["properties"]["output_video"]
    schemas["Job"]["properties"]["output_video"] = {"anyOf": [job_output, {"type": "null"}]}
    if strict:
        schemas = _forbid_unknown_properties(schemas)
    return {"schemas": schemas}


@functools.cache
def _validator(component: str, strict: bool) -> jsonschema.Draft202012Validator:
    components = _components(strict)
    if component not in components["schemas"]:
        raise KeyError(f"no component {component!r} in the upstream schema")
    schema = {"$ref": f"#/components/schemas/{component}", "components": components}
    return jsonschema.Draft202012Validator(schema, format_checker=format_checker())


def validate(component_name: str, payload: Any, *, strict: bool = False) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``payload`` fits the component.

    ``strict=True`` also refuses properties the component does not declare.
    """
    _validator(component_name, strict).validate(payload)
