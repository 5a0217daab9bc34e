"""Validation of job creation requests, with Django REST framework's messages.

TensorPix is a DRF backend: it accepts JSON, form-encoded and multipart bodies for the
same serializer, coerces strings ("23", "true") the way DRF fields do, ignores unknown
fields, and answers 400 with ``{"errors": {field: [msg]}, "non_field_errors": [msg]}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MISSING: Any = object()

CODECS = ("libx264", "libx265", "prores_ks")
CONTAINERS = ("mov", "mkv", "mp4")
CHROMA_SUBSAMPLINGS = (
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "",
)
OUTPUT_RESOLUTIONS = (-1, 640, 720, 854, 1280, 1920, 2048, 2560, 3840)
PRORES_PROFILES = (-1, 0, 1, 2, 3, 4, 5)
INT32_MAX = 2147483647

TRUE_VALUES = {"true", "True", "TRUE", "1", "yes", "on", "t", "y", 1}
FALSE_VALUES = {"false", "False", "FALSE", "0", "no", "off", "f", "n", 0}


class ValidationFailed(Exception):
    """A 400: field errors and errors about the request as a whole."""

    def __init__(
        self, errors: dict[str, list[str]] | None = None, non_field_errors: list[str] | None = None
    ) -> None:
        super().__init__(errors, non_field_errors)
        self.errors = errors or {}
        self.non_field_errors = non_field_errors or []

    def body(self) -> dict[str, Any]:
        return {"errors": self.errors, "non_field_errors": self.non_field_errors}


class RequestData:
    """A parsed body: JSON (one value per key) or form data (a list of values per key).

    ``get`` returns the last value of a form field, as DRF's QueryDict does;
    ``get_list`` returns every value, which is how form data carries ``ml_models``.
    """

    def __init__(self, values: Mapping[str, Any], *, is_form: bool) -> None:
        self._values = values
        self.is_form = is_form

    def get(self, name: str) -> Any:
        if name not in self._values:
            return MISSING
        value = self._values[name]
        if self.is_form:
            return value[-1] if value else MISSING
        return value

    def get_list(self, name: str) -> Any:
        if name not in self._values:
            return MISSING
        return list(self._values[name]) if self.is_form else self._values[name]


class FieldError(ValueError):
    """One field's message."""


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise FieldError("A valid integer is required.")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text) if "." in text else int(text)
        except ValueError:
            raise FieldError("A valid integer is required.") from None
        if isinstance(number, float) and not number.is_integer():
            raise FieldError("A valid integer is required.")
        return int(number)
    raise FieldError("A valid integer is required.")


def to_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FieldError("A valid number is required.")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise FieldError("A valid number is required.") from None
    if math.isnan(number) or math.isinf(number):
        raise FieldError("A valid number is required.")
    return number


def to_bool(value: Any) -> bool:
    if isinstance(value, list | dict):
        raise FieldError("Must be a valid boolean.")
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise FieldError("Must be a valid boolean.")


def bounded(convert: Callable[[Any], Any], low: float, high: float) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        number = convert(value)
        if number < low:
            raise FieldError(f"Ensure this value is greater than or equal to {low:g}.")
        if number > high:
            raise FieldError(f"Ensure this value is less than or equal to {high:g}.")
        return number

    return check


def choice(options: tuple[Any, ...]) -> Callable[[Any], Any]:
    """DRF's ``ChoiceField``: matches on the text form, so "1280" and 1280 both work."""
    as_text = {str(option): option for option in options}

    def check(value: Any) -> Any:
        key = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
        if key not in as_text:
            raise FieldError(f'"{value}" is not a valid choice.')
        return as_text[key]

    return check


def url(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError("Not a valid string.")
    if not value:
        raise FieldError("This field may not be blank.")
    if len(value) > 2048:
        raise FieldError("Ensure this field has no more than 2048 characters.")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise FieldError("Enter a valid URL.")
    return value


@dataclass(frozen=True)
class Field:
    convert: Callable[[Any], Any]
    default: Any = MISSING
    nullable: bool = False


COMMON_FIELDS: dict[str, Field] = {
    "codec": Field(choice(CODECS), "libx264"),
    "crf": Field(bounded(to_int, 0, 51), 23),
    "container": Field(choice(CONTAINERS), "mp4"),
    "chroma_subsampling": Field(choice(CHROMA_SUBSAMPLINGS), ""),
    "output_resolution": Field(choice(OUTPUT_RESOLUTIONS), -1),
    "grain": Field(bounded(to_number, 0, 1), 0.0),
    "comparison": Field(to_bool, False),
    "stabilization_smoothing": Field(bounded(to_int, 0, 40), 10),
    "target_fps": Field(bounded(to_number, 1, 240), None),
    "playback_speed": Field(bounded(to_number, 0.1, 1), 1.0),
    "sharpen_strength": Field(bounded(to_number, 0, 10), 0.0),
    "preview": Field(to_bool, False),
    "start_frame": Field(bounded(to_int, 0, INT32_MAX), None, nullable=True),
    "end_frame": Field(bounded(to_int, 1, INT32_MAX), None, nullable=True),
}
UPLOADED_VIDEO_FIELDS: dict[str, Field] = {
    **COMMON_FIELDS,
    "qscale": Field(bounded(to_int, 0, 32), 11),
    "prores_profile": Field(choice(PRORES_PROFILES), -1),
    "input_video": Field(to_int),
}
FROM_URL_FIELDS: dict[str, Field] = {**COMMON_FIELDS, "video_url": Field(url)}


def parse_job_request(data: RequestData, *, from_url: bool) -> dict[str, Any]:
    """The request's options with defaults filled in, or :class:`ValidationFailed`.

    Checks only what needs no state (types, bounds, enums, frame order); the state
    checks models, input video, Credits and storage.
    """
    fields = FROM_URL_FIELDS if from_url else UPLOADED_VIDEO_FIELDS
    errors: dict[str, list[str]] = {}
    options: dict[str, Any] = {}
    for name, spec in fields.items():
        raw = data.get(name)
        if raw is MISSING or (data.is_form and raw == "" and spec.nullable):
            if spec.default is MISSING:
                errors[name] = ["This field is required."]
            else:
                options[name] = spec.default
            continue
        if raw is None:
            if spec.nullable:
                options[name] = None
            else:
                errors[name] = ["This field may not be null."]
            continue
        try:
            options[name] = spec.convert(raw)
        except FieldError as error:
            errors[name] = [str(error)]
    try:
        options["ml_models"] = parse_model_ids(data.get_list("ml_models"))
    except FieldError as error:
        errors["ml_models"] = [str(error)]
    if not errors:
        start, end = options["start_frame"], options["end_frame"]
        if end is not None and not options["preview"] and end <= (start or 0):
            errors["end_frame"] = ["end_frame must be greater than start_frame."]
    if errors:
        raise ValidationFailed(errors)
    return options


def parse_model_ids(raw: Any) -> list[int]:
    if raw is MISSING:
        raise FieldError("This field is required.")
    if raw is None:
        raise FieldError("This field may not be null.")
    if not isinstance(raw, list):
        raise FieldError(f'Expected a list of items but got type "{type(raw).__name__}".')
    if not raw:
        raise FieldError("This list may not be empty.")
    return [to_int(item) for item in raw]
