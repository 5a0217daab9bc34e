"""Property tests: what TensorPix may send either reads back exactly or is refused cleanly.

Payloads come from the upstream schema (see ``tests/strategies.py``). Run on SQLite and on
PostgreSQL (``DATABASE_URL=...``): the two disagree on NUL characters, text lengths and
JSON numbers, which is what these tests are for.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils.dateparse import parse_datetime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_tensorpix.exceptions import MalformedPayload
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync import sync_jobs
from django_tensorpix.sync.payloads import Invalid, check_json
from django_tensorpix.sync.specs import JOB, ML_MODEL, RESTORED_VIDEO, VIDEO
from tests.strategies import (
    NESTED,
    broken_jobs,
    components,
    job_payload,
    json_type,
    json_values,
    payloads,
    resolve,
    text,
    with_unique_ids,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sync_path")]
property_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
SPECS = {"Job": JOB, "Video": VIDEO, "RestoredVideo": RESTORED_VIDEO, "MLModelList": ML_MODEL}
MODELS = {"Job": Job, "Video": Video, "RestoredVideo": RestoredVideo, "MLModelList": MLModel}


@st.composite
def job_pages(draw: st.DrawFn, nulls: str) -> list[dict[str, Any]]:
    jobs = draw(st.lists(payloads("Job", nulls), min_size=1, max_size=3))
    return [with_unique_ids(job, seed=index + 1) for index, job in enumerate(jobs)]


def expected(schema: dict[str, Any], value: Any) -> Any:
    """The Python value a column should hold for a JSON value, by the schema's type."""
    if value is None:
        return None
    if schema.get("format") == "date-time":
        moment = parse_datetime(value)
        assert moment is not None
        return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    if schema.get("format") == "decimal":
        return Decimal(value)
    if json_type(schema) == "number":
        return float(value)
    return value


def same_json(stored: Any, sent: Any) -> bool:
    """JSON equality as jsonb keeps numbers (``1e308`` may come back as ``10**308``)."""
    if isinstance(stored, dict) and isinstance(sent, dict):
        return stored.keys() == sent.keys() and all(same_json(stored[k], sent[k]) for k in sent)
    if isinstance(stored, list) and isinstance(sent, list):
        return len(stored) == len(sent) and all(map(same_json, stored, sent))
    if isinstance(sent, float) and isinstance(stored, int) and not isinstance(stored, bool):
        return float(stored) == sent
    return type(stored) is type(sent) and stored == sent


def assert_row_matches(row: Any, component: str, payload: dict[str, Any]) -> None:
    properties = components()[component]["properties"]
    assert row.tensorpix_id == payload["id"]
    for name, field_schema in properties.items():
        if name == "id" or name in NESTED:
            continue
        stored, sent = getattr(row, name), payload.get(name)
        if name == "preview_videos":
            assert same_json(stored, sent), name
        else:
            assert stored == expected(resolve(field_schema), sent), name
    extras = {key: value for key, value in payload.items() if key not in properties}
    for key, value in extras.items():
        assert same_json(row.remote_data[key], value), key


def assert_page_reads_back(page: list[dict[str, Any]]) -> None:
    for payload in page:
        job = Job.objects.get(tensorpix_id=payload["id"])
        assert_row_matches(job, "Job", payload)
        assert job.input_video is not None
        assert_row_matches(job.input_video, "Video", payload["input_video"])
        assert same_json(job.input_video.remote_data, payload["input_video"])
        if payload["output_video"] is None:
            assert job.output_video is None
        else:
            assert job.output_video is not None
            assert_row_matches(job.output_video, "RestoredVideo", payload["output_video"])
        models = {model.tensorpix_id: model for model in job.ml_models.all()}
        assert set(models) == {model["id"] for model in payload["ml_models"]}
        for model in payload["ml_models"]:
            assert_row_matches(models[model["id"]], "MLModelList", model)


def in_rolled_back_transaction(check: Any) -> None:
    """Run one example and undo it, so examples do not see each other's rows."""
    with transaction.atomic():
        check()
        transaction.set_rollback(True)


@pytest.mark.parametrize("nulls", ["all", "none", "mixed"])
def test_generated_jobs_read_back_exactly(nulls: str) -> None:
    @property_settings
    @given(page=job_pages(nulls))
    def check(page: list[dict[str, Any]]) -> None:
        def sync_and_read_back() -> None:
            sync_jobs(page)
            assert_page_reads_back(page)
            assert sync_jobs(page).unchanged == len(page)

        in_rolled_back_transaction(sync_and_read_back)

    check()


def test_broken_jobs_are_refused_naming_the_field_and_write_nothing() -> None:
    sync_jobs([job_payload()])
    before = (Job.objects.get().remote_data, Job.objects.count(), Video.objects.count())
    before_events = JobEvent.objects.count()

    @property_settings
    @given(broken=broken_jobs())
    def check(broken: tuple[dict[str, Any], str]) -> None:
        job, path = broken
        with pytest.raises(MalformedPayload) as error:
            sync_jobs([job_payload(status=1, processing_progress=0.5), job])
        assert error.value.object_type == "Job"
        assert error.value.field == path
        assert (Job.objects.get().remote_data, Job.objects.count(), Video.objects.count()) == (
            before
        )
        assert JobEvent.objects.count() == before_events

    check()


def test_nul_in_a_field_tensorpix_added_later_is_refused() -> None:
    with pytest.raises(MalformedPayload) as error:
        sync_jobs([job_payload(x_notes=["ok", "bad\x00"])])

    assert error.value.field == "x_notes[1]"
    assert not Job.objects.exists()


def reference_values(spec: Any, payload: dict[str, Any]) -> dict[str, Any] | str:
    """What ``Field.read`` makes of each field, one call each: the values, or the error."""
    try:
        return {f.name: f.read(payload) for f in spec.fields}
    except Invalid as error:
        return f"{error.path}: {error.reason}"


def fast_values(spec: Any, payload: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return spec.parse_object({"id": 1, **payload}).values
    except Invalid as error:
        return f"{error.path}: {error.reason}"


@pytest.mark.parametrize("component", ["Job", "Video", "RestoredVideo", "MLModelList"])
def test_the_shortcut_of_field_checks_agrees_with_reading_each_field(component: str) -> None:
    """``parse_object`` takes values of the exact type within bounds without calling
    ``Field.read``: the values and errors must be the same, at every edge of the bounds."""
    spec = SPECS[component]
    edges: st.SearchStrategy[Any] = st.sampled_from(
        [
            *(2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63 - 1, 2**63, 2**200),
            *(True, False, 0, 1, 1.0, -0.0, 1e308, 1.7976931348623157e308, 10**400),
            *("", "1", None, [], {}),
        ]
    )

    @property_settings
    @given(payload=payloads(component, "mixed"), data=st.data())
    def check(payload: dict[str, Any], data: st.DataObject) -> None:
        names = [f.name for f in spec.fields if not f.nested]
        for name in data.draw(st.lists(st.sampled_from(names), max_size=3)):
            payload[name] = data.draw(edges)
        for name in [f.name for f in spec.fields if f.nested]:
            payload.pop(name, None)
        nested = [f for f in spec.fields if f.nested]
        flat = type(spec)(spec.object_type, tuple(f for f in spec.fields if f not in nested))
        assert fast_values(flat, payload) == reference_values(flat, payload)

    check()


def nested_lists(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def hostile_values() -> st.SearchStrategy[Any]:
    """JSON-ish values with what ``check_json`` refuses mixed in, nested up to 40 deep."""
    refused = st.sampled_from(
        ["a\x00b", "\ud800", float("nan"), float("inf"), (1, 2), {"\x00": 1}, {1: "key"}]
    )
    leaves = st.one_of(refused, json_values())
    deep = st.integers(27, 33).map(nested_lists)
    return st.one_of(leaves, deep, st.lists(leaves, max_size=2), st.dictionaries(text(), leaves))


def test_the_fast_payload_check_accepts_only_what_the_full_check_accepts() -> None:
    """``parse_clean`` checks while parsing instead of encoding: whatever it accepts, the
    full check (``check_json`` then ``parse_object``) accepts with the same values."""

    @settings(property_settings, max_examples=200)
    @given(job=payloads("Job", "mixed"), data=st.data())
    def check(job: dict[str, Any], data: st.DataObject) -> None:
        job = with_unique_ids(job, seed=1)
        targets = [job] + [job[name] for name in NESTED if isinstance(job.get(name), dict)]
        targets += [m for m in job.get("ml_models") or [] if isinstance(m, dict)]
        for _ in range(data.draw(st.integers(0, 2))):
            target = data.draw(st.sampled_from(targets))
            name = data.draw(st.one_of(st.just("x_extra"), st.sampled_from(sorted(target))))
            if name != "id":
                target[name] = data.draw(hostile_values())
        fast = JOB.parse_clean(job, 1)
        try:
            check_json(job)
            full: Any = JOB.parse_object(job)
        except Invalid:
            full = None
        if fast is not None:
            assert fast == full

    check()
    assert JOB.parse_clean(job_payload(), 1) == JOB.parse_object(job_payload())
