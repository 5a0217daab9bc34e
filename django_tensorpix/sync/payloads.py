"""Checking TensorPix payloads and turning them into column values, before anything is written.

Each object type is described once, field by field, with TensorPix's names and the
nullability of the upstream schema (``upstream-openapi-2025-07-04.yaml``). A payload is
*malformed*, and :class:`~django_tensorpix.exceptions.MalformedPayload` names the object
and the field, when:

* a required field is missing, or a field has the wrong JSON type (a boolean is not an
  integer here, although Python thinks so);
* a value does not fit its column: integers beyond signed 32 or 64 bits, non-finite
  numbers, a ``cost_usd`` other than ``-?\\d{0,6}(\\.\\d{0,4})?``, a date-time that is not
  ISO 8601 or falls outside years 1-9999 in UTC;
* a string anywhere in the payload, extra fields included, holds a NUL character or a lone
  surrogate, or the payload nests deeper than ``MAX_JSON_DEPTH``. PostgreSQL refuses NUL
  in text and in ``jsonb``; we reject rather than strip so that what is stored is always
  exactly what TensorPix sent, on every database.

Values the schema bounds but the column can hold (a ``quality_score`` of 6, an unknown
status or task) are stored as they come: TensorPix's data is the truth we mirror, and
refusing it would stop the whole sync. A date-time without an offset is read as UTC.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.utils.dateparse import parse_datetime

from django_tensorpix._http import MAX_JSON_DEPTH, json_depth
from django_tensorpix.exceptions import MalformedPayload

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
COST_PATTERN = re.compile(r"-?\d{0,6}(?:\.\d{0,4})?")


class Invalid(ValueError):
    """A value that does not fit; ``path`` names the field inside the object."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    def inside(self, name: str) -> Invalid:
        """The same problem, seen from the object that holds ``name``."""
        if not self.path:
            return Invalid(self.reason, name)
        separator = "" if self.path.startswith("[") else "."
        return Invalid(self.reason, f"{name}{separator}{self.path}")


def _integer(bounds: tuple[int, int], label: str) -> Callable[[Any], int]:
    low, high = bounds

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer, got {_describe(value)}")
        if not low <= value <= high:
            raise Invalid(f"{value} does not fit a {label} integer")
        return value

    return parse


integer = _integer(INT32, "signed 32-bit")
big_integer = _integer(INT64, "signed 64-bit")


def number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"expected a number, got {_describe(value)}")
    try:
        as_float = float(value)
    except OverflowError:
        raise Invalid(f"{value} does not fit a double-precision float") from None
    if not math.isfinite(as_float):
        raise Invalid(f"{value} is not a finite number")
    if isinstance(value, int) and as_float != value:
        raise Invalid(f"{value} cannot be stored exactly as a double-precision float")
    return as_float


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected a boolean, got {_describe(value)}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {_describe(value)}")
    return value


def date_time(value: Any) -> datetime:
    text = string(value)
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise Invalid(f"{text!r} is not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise Invalid(f"{text!r} falls outside years 1-9999 in UTC") from None


def cost(value: Any) -> Decimal:
    text = string(value)
    if not COST_PATTERN.fullmatch(text) or not any(char.isdigit() for char in text):
        raise Invalid(f"{text!r} is not a decimal of at most 6 digits and 4 decimal places")
    return Decimal(text)


_MISSING = object()
# For the parsers that return a valid value unchanged: its exact type, and the bounds it
# must be within (``None``: any). A float within ``±max`` is finite (NaN compares false).
_ACCEPTED: dict[Callable[[Any], Any], tuple[type, Any, Any]] = {
    string: (str, None, None),
    boolean: (bool, None, None),
    integer: (int, *INT32),
    big_integer: (int, *INT64),
    number: (float, -sys.float_info.max, sys.float_info.max),
}


def url_paths(value: Any) -> Any:
    """The value with every URL's query string and fragment removed, for comparisons.

    TensorPix re-signs presigned URLs on every read, so only the rest of a URL says
    whether it points somewhere else.
    """
    if isinstance(value, str):
        parts = urlsplit(value)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if isinstance(value, Mapping):
        return {key: url_paths(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class Field:
    """One TensorPix field: its name (also the column's), how to read it, and its schema.

    ``url`` marks presigned URLs (or objects of them), compared without their query string;
    ``nested`` marks embedded TensorPix objects, which are rows of their own, not columns.
    """

    name: str
    parse: Callable[[Any], Any]
    nullable: bool = False
    required: bool = True
    url: bool = False
    nested: bool = False

    def read(self, payload: Mapping[str, Any]) -> Any:
        if self.name not in payload:
            if self.required:
                raise Invalid("is required", self.name)
            return None
        value = payload[self.name]
        if value is None:
            if self.nullable:
                return None
            raise Invalid("must not be null", self.name)
        try:
            return self.parse(value)
        except Invalid as error:
            raise error.inside(self.name) from None

    def same(self, stored: Any, received: Any) -> bool:
        """Whether two values of this field are the same, presigned URLs by path only."""
        if self.url:
            if _same_before_query(stored, received):
                return True
            return same_json(url_paths(stored), url_paths(received))
        return same_json(stored, received)


def _same_before_query(stored: Any, received: Any) -> bool:
    """Equal up to the first ``?``: then ``url_paths`` is equal too (a cheap first look).

    Everything ``urlsplit`` keeps (scheme, host, path) comes before the first ``?``.
    """
    if isinstance(stored, str) and isinstance(received, str):
        return stored.partition("?")[0] == received.partition("?")[0]
    if isinstance(stored, dict) and isinstance(received, dict):
        return stored.keys() == received.keys() and all(
            _same_before_query(stored[key], received[key]) for key in stored
        )
    return False


@dataclass
class Parsed:
    """A checked payload: the TensorPix id, the column values and the payload as received."""

    tensorpix_id: int
    values: dict[str, Any]
    raw: dict[str, Any]


@dataclass(frozen=True)
class ObjectSpec:
    """The fields of one TensorPix object type, in the schema's terms."""

    object_type: str
    fields: tuple[Field, ...]
    known: frozenset[str] = field(init=False)
    _plan: tuple[tuple[str, Any, Any, Any, Callable[[Any], Any], Any, Any], ...] = field(
        init=False, repr=False, compare=False
    )
    columns: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset({"id"} | {f.name for f in self.fields}))
        plan = tuple(
            (
                f.name,
                *_ACCEPTED.get(f.parse, (_MISSING, None, None)),
                f.read,
                _OBJECTS.get(f.parse),
                _ARRAYS.get(f.parse),
            )
            for f in self.fields
        )
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "columns", tuple(f.name for f in self.fields if not f.nested))

    def parse(self, payload: Any) -> Parsed:
        """Check a whole payload (nested objects included); raise MalformedPayload if it is bad."""
        parsed = self.parse_clean(payload, 1)
        if parsed is not None:
            return parsed
        try:
            check_json(payload)
            return self.parse_object(payload)
        except Invalid as error:
            raise self.malformed(payload, error) from None

    def parse_clean(self, payload: Any, level: int) -> Parsed | None:
        """:meth:`parse_object` of a payload that is plainly valid, ``None`` at any doubt.

        The checks of :func:`check_json` made on the way instead of by encoding the whole
        payload: text without NUL or lone surrogates, finite floats, JSON types only
        (exactly: no subclass, no tuple, string keys), nesting within ``MAX_JSON_DEPTH``
        (``level`` is the payload's own). Anything else, a malformed payload included,
        returns ``None``, and :meth:`parse` takes the slow path, which names the problem:
        what is accepted here is exactly what the slow path accepts, with the same values.
        """
        if type(payload) is not dict or level > MAX_JSON_DEPTH:
            return None
        tensorpix_id = payload.get("id")
        if type(tensorpix_id) is not int or not INT64[0] <= tensorpix_id <= INT64[1]:
            return None
        values: dict[str, Any] = {}
        for name, exact, low, high, read, one, each in self._plan:
            value = payload.get(name, _MISSING)
            if type(value) is exact and (low is None or low <= value <= high):
                # ``_clean_text`` inlined for the usual ASCII text (most values of a page).
                if exact is str and (
                    "\x00" in value or not (value.isascii() or _clean_text(value))
                ):
                    return None
                values[name] = value
            elif one is not None and type(value) is dict:
                nested = one.parse_clean(value, level + 1)
                if nested is None:
                    return None
                values[name] = nested
            elif each is not None and type(value) is list:
                items = [each.parse_clean(item, level + 2) for item in value]
                if level + 1 > MAX_JSON_DEPTH or None in items:
                    return None
                values[name] = items
            else:
                try:
                    values[name] = read(payload)
                except Invalid:
                    return None
                if value is not _MISSING and not _clean(value, level):
                    return None
        known = self.known
        for key, value in payload.items():
            if key not in known and not (
                type(key) is str and _clean_text(key) and _clean(value, level)
            ):
                return None
        return Parsed(tensorpix_id, values, payload)

    def parse_object(self, payload: Any) -> Parsed:
        if not isinstance(payload, dict):
            raise Invalid(f"expected an object, got {_describe(payload)}")
        if "id" not in payload:
            raise Invalid("is required", "id")
        try:
            tensorpix_id = big_integer(payload["id"])
        except Invalid as error:
            raise error.inside("id") from None
        values = {}
        for name, exact, low, high, read, _, _ in self._plan:
            value = payload.get(name, _MISSING)
            # A value of the field's exact type within its bounds is what ``Field.read``
            # would return itself: taken as is, without the calls (most of a page).
            if type(value) is exact and (low is None or low <= value <= high):
                values[name] = value
            else:
                values[name] = read(payload)
        return Parsed(tensorpix_id, values, payload)

    @property
    def nested(self) -> Callable[[Any], Parsed]:
        """Field parser for this object type embedded in another (e.g. ``Job.input_video``)."""
        parse = _NESTED_PARSERS.get(self)
        if parse is None:
            parse = _NESTED_PARSERS[self] = self.parse_object
            _OBJECTS[parse] = self
        return parse

    def malformed(self, payload: Any, error: Invalid) -> MalformedPayload:
        object_id = payload.get("id") if isinstance(payload, dict) else None
        label = f"{self.object_type} {object_id!r}" if object_id is not None else self.object_type
        where = f" field {error.path!r}" if error.path else ""
        return MalformedPayload(
            f"Malformed TensorPix {label}:{where} {error.reason}.",
            object_type=self.object_type,
            field=error.path,
        )

    def extras(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Fields TensorPix sent that this version does not know (kept in ``remote_data``)."""
        return {key: value for key, value in raw.items() if key not in self.known}

    def changed_fields(self, instance: Any, parsed: Parsed) -> set[str]:
        """Names of the columns whose TensorPix value differs, presigned URLs by path only.

        Extra fields count too: a change in a field TensorPix added later is a change.
        """
        changed = {
            f.name
            for f in self.fields
            if not f.nested and not f.same(getattr(instance, f.name), parsed.values[f.name])
        }
        if not same_json(self.extras(instance.remote_data or {}), self.extras(parsed.raw)):
            changed.add("remote_data")
        return changed

    def column_names(self) -> list[str]:
        return list(self.columns)


def same_payload(stored: Any, received: Any) -> bool:
    """:func:`same_json` for whole payloads, settled at C speed in the usual cases.

    Python's ``==`` differs from JSON equality only where it calls ``True`` equal to ``1``
    and where ``jsonb`` rewrote a float as an integer; so when ``==`` says equal, the
    canonical JSON text (which writes ``true``, not ``1``) confirms it, and otherwise the
    walk, which stops at the first real difference (usually a re-signed URL), decides.
    """
    if stored != received:
        return same_json(stored, received)
    try:
        if _canonical(stored) == _canonical(received):
            return True
    except (TypeError, ValueError):
        pass
    return same_json(stored, received)


def _canonical(value: Any) -> str:
    return _CANONICAL.encode(value)


# Built once: ``json.dumps`` with options builds an encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def same_json(stored: Any, received: Any) -> bool:
    """Equality of JSON values as PostgreSQL's ``jsonb`` keeps them.

    ``jsonb`` stores numbers as ``numeric`` and prints them without an exponent, so a float
    such as ``1e308`` comes back as the integer ``10**308``: the same JSON number.
    """
    if isinstance(stored, dict) and isinstance(received, dict):
        return stored.keys() == received.keys() and all(
            same_json(stored[key], received[key]) for key in stored
        )
    if isinstance(stored, list) and isinstance(received, list):
        return len(stored) == len(received) and all(map(same_json, stored, received))
    if _is_number(stored) and _is_number(received):
        try:
            return float(stored) == float(received) and (
                float in (type(stored), type(received)) or stored == received
            )
        except OverflowError:
            return stored == received
    return type(stored) is type(received) and bool(stored == received)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    return {bool: "a boolean", dict: "an object", list: "an array", str: "a string"}.get(
        type(value), f"{type(value).__name__} {value!r}"[:60]
    )


def check_json(value: Any) -> None:
    """Reject what no database column of ours can hold, anywhere in a payload.

    One C-speed ``json.dumps`` clears the usual payload; the slow walk only runs to name
    the field when that finds something suspicious.
    """
    try:
        text = _ENCODER.encode(value)
        text.encode("utf-8")
    except RecursionError:
        raise Invalid(f"is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, TypeError):
        pass
    else:
        # Bounded here too (the client already refuses deeper answers): comparing and
        # storing JSON recurses once per level, on every later sync of the object.
        if _may_nest_deeper(text) and json_depth(text) > MAX_JSON_DEPTH:
            raise Invalid(f"is nested deeper than {MAX_JSON_DEPTH} levels")
        if "\\u0000" not in text:
            return
    for where, item in _walk(value, ""):
        if isinstance(item, str):
            if "\x00" in item:
                raise Invalid("contains a NUL character, which PostgreSQL cannot store", where)
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise Invalid("contains a lone surrogate, not valid UTF-8", where) from None
        elif isinstance(item, float) and not math.isfinite(item):
            raise Invalid(f"{item} is not a finite number", where)
        elif not isinstance(item, JSON_SCALARS):
            raise Invalid(f"{_describe(item)} is not a JSON value", where)


def _may_nest_deeper(text: str) -> bool:
    """Whether ``text`` could nest deeper than allowed: never with fewer brackets in all.

    Counting brackets (inside strings too) is an upper bound found at C speed; a usual
    payload has a handful, so the exact (and much slower) measure rarely runs.
    """
    return text.count("{") + text.count("[") > MAX_JSON_DEPTH


JSON_SCALARS = (str, int, float, bool, type(None))


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, key
            yield from _walk(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


# The specs behind the parsers of nested objects and arrays of them (for ``parse_clean``).
_NESTED_PARSERS: dict[ObjectSpec, Callable[[Any], Parsed]] = {}
_OBJECTS: dict[Callable[[Any], Any], ObjectSpec] = {}
_ARRAYS: dict[Callable[[Any], Any], ObjectSpec] = {}


def _clean_text(text: str) -> bool:
    """No NUL (PostgreSQL refuses it) and valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean(value: Any, level: int) -> bool:
    """Whether a value held at nesting ``level`` is JSON :func:`check_json` accepts."""
    kind = type(value)
    if kind is str:
        return _clean_text(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int or kind is bool or value is None:
        return True
    if level >= MAX_JSON_DEPTH:
        return False
    if kind is dict:
        return all(
            type(key) is str and _clean_text(key) and _clean(item, level + 1)
            for key, item in value.items()
        )
    if kind is list:
        return all(_clean(item, level + 1) for item in value)
    return False


def many(spec: ObjectSpec) -> Callable[[Any], list[Parsed]]:
    def parse(value: Any) -> list[Parsed]:
        if not isinstance(value, list):
            raise Invalid(f"expected an array, got {_describe(value)}")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(spec.parse_object(item))
            except Invalid as error:
                raise error.inside(f"[{index}]") from None
        return items

    _ARRAYS[parse] = spec
    return parse


def ids_of(items: Iterable[Parsed]) -> list[int]:
    return [item.tensorpix_id for item in items]
