"""The API's serializers: TensorPix's fields as TensorPix shows them, local ids, validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from django_tensorpix.api.serializers import JobCreateSerializer
from django_tensorpix.client import TensorPixClient
from django_tensorpix.models import Job
from django_tensorpix.sync import sync_job
from django_tensorpix.testing import TensorPixEmulator
from tests.strategies import components, job_payload, resolve

pytestmark = pytest.mark.django_db
NESTED = {"input_video": "Video", "output_video": "RestoredVideo"}


def assert_same_as_tensorpix(api: dict[str, Any], remote: dict[str, Any], component: str) -> None:
    """TensorPix's fields of ``remote`` are in ``api`` with equal values, ``id`` as
    ``tensorpix_id``; decimals by value, datetimes as instants, nested objects likewise."""
    properties = components()[component]["properties"]
    assert isinstance(api["id"], int)
    assert api["tensorpix_id"] == remote["id"]
    for name, value in remote.items():
        if name == "id":
            continue
        assert name in api, f"{component}.{name} missing"
        schema = resolve(properties[name])
        mine = api[name]
        if name in NESTED and value is not None:
            assert_same_as_tensorpix(mine, value, NESTED[name])
        elif name == "ml_models":
            assert len(mine) == len(value)
            by_id = {model["tensorpix_id"]: model for model in mine}
            for model in value:
                assert_same_as_tensorpix(by_id[model["id"]], model, "MLModelList")
        elif value is not None and schema.get("format") == "decimal":
            assert Decimal(mine) == Decimal(value), name
        elif value is not None and schema.get("format") == "date-time":
            assert parse_datetime(mine) == parse_datetime(value), name
        else:
            assert mine == value, f"{component}.{name}: {mine!r} != {value!r}"


def finished_job_from_emulator(emulator: TensorPixEmulator, user: Any) -> dict[str, Any]:
    """A job finished at the emulator, synced through the client; returns its JSON."""
    with TensorPixClient.for_account() as client:
        created = client.create_job_from_url(
            video_url="https://media.example.com/clip_720p.mp4",
            ml_models=[1],
            grain=0.25,
            start_frame=10,
            end_frame=400,
        )
        emulator.advance(24 * 3600)
        payload = client.get_job(created["id"])
    assert payload["status"] == 2
    assert payload["output_video"] is not None
    job = sync_job(payload)
    Job.objects.filter(pk=job.pk).update(user=user)
    return dict(payload)


def test_api_fields_equal_the_emulators_json_for_a_synced_job(
    tensorpix_account: TensorPixEmulator, api: APIClient, alice: Any
) -> None:
    payload = finished_job_from_emulator(tensorpix_account, alice)
    job = Job.objects.get(tensorpix_id=payload["id"])

    detail = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()
    listed = api.get("/api/tensorpix/jobs/").json()["results"][0]

    assert_same_as_tensorpix(detail, payload, "Job")
    assert_same_as_tensorpix(listed, payload, "Job")
    assert detail["id"] == job.pk
    assert detail["input_video"]["id"] == job.input_video_id
    assert detail["output_video"]["id"] == job.output_video_id
    assert isinstance(detail["cost_usd"], str)
    output = api.get(f"/api/tensorpix/restored-videos/{job.output_video_id}/").json()
    assert_same_as_tensorpix(output, payload["output_video"], "RestoredVideo")
    assert output["local"]["job"] == job.pk


def test_every_top_level_field_is_tensorpixs_or_an_id_or_local(api: APIClient, alice: Any) -> None:
    job = sync_job(job_payload())
    Job.objects.filter(pk=job.pk).update(user=alice)

    body = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()

    documented = set(components()["Job"]["properties"])
    assert set(body) == documented | {"tensorpix_id", "local"}
    assert set(body["input_video"]) == set(components()["Video"]["properties"]) | {
        "tensorpix_id",
        "local",
    }
    assert body["local"]["user"] == alice.pk
    assert body["local"]["submission_state"] == "submitted"
    assert "remote_data" not in body["local"]
    assert [event["kind"] for event in body["local"]["events"]] == ["status"]


def test_remote_data_is_shown_only_when_the_setting_says_so(
    api: APIClient, alice: Any, settings: Any
) -> None:
    job = sync_job(job_payload())
    Job.objects.filter(pk=job.pk).update(user=alice)
    settings.TENSORPIX = {**settings.TENSORPIX, "API_EXPOSE_REMOTE_DATA": True}

    body = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()

    assert body["local"]["remote_data"]["id"] == 52
    assert body["input_video"]["local"]["remote_data"]["id"] == 31
    assert body["output_video"]["local"]["remote_data"]["id"] == 74


def test_a_job_not_yet_submitted_has_a_local_id_and_no_tensorpix_id(
    api: APIClient, alice: Any
) -> None:
    job = Job.objects.create(
        user=alice, codec="libx264", grain=0.5, video_url="https://x.test/a.mp4"
    )

    body = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()

    assert body["id"] == job.pk
    assert body["tensorpix_id"] is None
    assert body["status"] is None
    assert body["input_video"] is None
    assert body["output_video"] is None
    assert (body["codec"], body["grain"]) == ("libx264", 0.5)
    assert body["local"]["submission_state"] == "pending"
    assert body["local"]["video_url"] == "https://x.test/a.mp4"


def test_unknown_enum_values_from_tensorpix_are_shown_as_they_come(
    api: APIClient, alice: Any
) -> None:
    job = sync_job(job_payload(status=7, codec="av1", output_resolution=4096))
    Job.objects.filter(pk=job.pk).update(user=alice)

    body = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()

    assert (body["status"], body["codec"], body["output_resolution"]) == (7, "av1", 4096)


# -- creating: validation ------------------------------------------------------------------


def errors_of(data: dict[str, Any]) -> dict[str, Any]:
    serializer = JobCreateSerializer(data=data)
    assert not serializer.is_valid()
    return dict(serializer.errors)


URL = "https://media.example.com/clip.mp4"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("crf", 52),
        ("crf", -1),
        ("qscale", 33),
        ("grain", 1.5),
        ("stabilization_smoothing", 41),
        ("target_fps", 0.5),
        ("target_fps", 241),
        ("playback_speed", 0.05),
        ("sharpen_strength", 10.5),
        ("start_frame", -1),
        ("end_frame", 0),
        ("codec", "av1"),
        ("container", "avi"),
        ("chroma_subsampling", "yuv411p"),
        ("output_resolution", 1000),
        ("prores_profile", 6),
        ("preview", "maybe"),
    ],
)
def test_options_out_of_tensorpix_bounds_are_refused_field_by_field(field: str, value: Any) -> None:
    errors = errors_of({"video_url": URL, "ml_models": [1], field: value})

    assert set(errors) == {field}
    assert isinstance(errors[field], list)


def test_every_documented_option_within_bounds_is_accepted() -> None:
    data = {
        "video_url": URL,
        "ml_models": [1, "Denoise", "7"],
        "codec": "libx265",
        "crf": 51,
        "container": "mkv",
        "chroma_subsampling": "",
        "preview": True,
        "start_frame": 0,
        "end_frame": 2147483647,
        "output_resolution": 3840,
        "grain": 1,
        "comparison": False,
        "stabilization_smoothing": 40,
        "target_fps": 240,
        "playback_speed": 0.1,
        "sharpen_strength": 10,
    }
    serializer = JobCreateSerializer(data=data)

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["ml_models"] == [1, "Denoise", 7]
    assert serializer.options()["output_resolution"] == 3840
    assert "qscale" not in serializer.options()


def test_a_form_that_leaves_a_boolean_out_does_not_send_false() -> None:
    from django.http import QueryDict

    form = QueryDict(mutable=True)
    form.update({"video_url": URL, "ml_models": "1"})
    serializer = JobCreateSerializer(data=form)

    assert serializer.is_valid(), serializer.errors
    assert "preview" not in serializer.options()
    assert serializer.validated_data["ml_models"] == [1]


@pytest.mark.parametrize(
    "url",
    ["ftp://media.example.com/a.mp4", "file:///etc/passwd", "javascript:alert(1)", "not a url"],
)
def test_video_url_must_be_http_or_https(url: str) -> None:
    assert set(errors_of({"video_url": url, "ml_models": [1]})) == {"video_url"}


def test_a_video_url_or_a_file_is_required_but_not_both() -> None:
    assert "non_field_errors" in errors_of({"ml_models": [1]})


def test_prores_settings_are_refused_for_a_video_url() -> None:
    errors = errors_of({"video_url": URL, "ml_models": [1], "qscale": 10, "prores_profile": 2})

    assert set(errors) == {"qscale", "prores_profile"}


def test_end_frame_must_come_after_start_frame() -> None:
    errors = errors_of({"video_url": URL, "ml_models": [1], "start_frame": 50, "end_frame": 50})

    assert set(errors) == {"end_frame"}


@pytest.mark.parametrize("ml_models", [[], [True], [""], [1.5], "1", [{"id": 1}]])
def test_ml_models_must_be_ids_or_names(ml_models: Any) -> None:
    assert set(errors_of({"video_url": URL, "ml_models": ml_models})) == {"ml_models"}


def test_started_is_an_iso_8601_instant(api: APIClient, alice: Any) -> None:
    job = sync_job(job_payload(started="2025-07-01T12:00:00+02:00"))
    Job.objects.filter(pk=job.pk).update(user=alice)

    started = api.get(f"/api/tensorpix/jobs/{job.pk}/").json()["started"]

    assert parse_datetime(started) == dt.datetime(2025, 7, 1, 10, tzinfo=dt.UTC)
