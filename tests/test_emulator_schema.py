"""Every payload the emulator produces, in every job state, fits the upstream schema.

Also pins the validation helper itself (tests/openapi_schema.py): it must check formats,
understand both null notations and allow only the documented ``output_video`` quirk.
"""

from __future__ import annotations

import jsonschema
import pytest
import requests

from django_tensorpix.testing import TensorPixEmulator
from tests.openapi_schema import load_upstream_schema, validate

TEN_HOURS = 10 * 3600


def job_in_each_state(http: requests.Session, emulator: TensorPixEmulator) -> dict[str, int]:
    """Jobs that are queued, processing, finished, failed, canceled and output-deleted."""
    emulator.max_active_jobs = 1
    video_id = emulator.add_video(name="lecture_720p.mp4")

    def create(url: str = "https://media.example.com/a_720p.mp4") -> int:
        response = http.post(
            f"{emulator.base_url}/api/jobs/from-url/", json={"video_url": url, "ml_models": [1, 4]}
        )
        assert response.status_code == 201
        return response.json()["id"]

    uploaded = http.post(
        f"{emulator.base_url}/api/jobs/", json={"input_video": video_id, "ml_models": [14]}
    ).json()["id"]
    deleted_output, failed = create(), create("https://media.example.com/b-fail.mp4")
    emulator.advance(TEN_HOURS)
    finished_output = emulator.job_payload(deleted_output)["output_video"]["id"]
    http.delete(f"{emulator.base_url}/api/restored-videos/{finished_output}/")
    processing, queued, canceled = create(), create(), create()
    http.delete(f"{emulator.base_url}/api/jobs/{canceled}/")
    emulator.advance(emulator.queue_delay + 1)
    return {
        "finished": uploaded,
        "output deleted": deleted_output,
        "failed": failed,
        "processing": processing,
        "queued": queued,
        "canceled": canceled,
    }


def test_job_payloads_in_every_state_fit_the_schema(http, emulator):
    jobs = job_in_each_state(http, emulator)

    statuses = {}
    for state, job_id in jobs.items():
        payload = http.get(f"{emulator.base_url}/api/jobs/{job_id}/").json()
        validate("Job", payload, strict=True)
        statuses[state] = payload["status"]
    listing = http.get(f"{emulator.base_url}/api/jobs/").json()
    validate("PaginatedJobList", listing, strict=True)

    assert statuses == {
        "finished": 2,
        "output deleted": 2,
        "failed": -1,
        "processing": 1,
        "queued": 0,
        "canceled": -2,
    }


def test_every_list_and_detail_endpoint_fits_the_schema(http, emulator):
    job_in_each_state(http, emulator)
    base = emulator.base_url
    pages = {
        "/api/jobs/": "PaginatedJobList",
        "/api/videos/": "PaginatedVideoList",
        "/api/restored-videos/": "PaginatedRestoredVideoList",
        "/api/ml-models/": "PaginatedMLModelListList",
        "/api/accounts/profile/balance/": "CreditsBalance",
    }
    for path, component in pages.items():
        validate(component, http.get(base + path).json(), strict=True)
    for video in http.get(f"{base}/api/videos/").json()["results"]:
        validate("Video", http.get(f"{base}/api/videos/{video['id']}/").json(), strict=True)
    for video in http.get(f"{base}/api/restored-videos/").json()["results"]:
        detail = http.get(f"{base}/api/restored-videos/{video['id']}/").json()
        validate("RestoredVideo", detail, strict=True)


def test_schema_copy_is_the_upstream_snapshot():
    document = load_upstream_schema()

    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == "1.1.0"


def test_helper_allows_null_output_video_only_as_the_documented_quirk(http, emulator):
    job_id = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        json={"video_url": "https://media.example.com/a.mp4", "ml_models": [4]},
    ).json()["id"]
    payload = emulator.job_payload(job_id)

    validate("Job", payload)
    with pytest.raises(jsonschema.ValidationError):
        validate("Job", {**payload, "output_video": {"id": 1}})
    with pytest.raises(jsonschema.ValidationError):
        validate("Job", {**payload, "input_video": None})


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("cost_usd",), "1.23456"),
        (("cost_usd",), "abc"),
        (("started",), "yesterday"),
        (("output_video", "created_at"), "2026-13-01T00:00:00Z"),
        (("output_video", "file"), "not a uri"),
        (("input_video", "owner"), "not-an-email"),
        (("status",), 3),
    ],
)
def test_helper_checks_patterns_formats_and_enums(http, emulator, path, bad_value):
    job_id = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        json={"video_url": "https://media.example.com/a.mp4", "ml_models": [4]},
    ).json()["id"]
    emulator.advance(TEN_HOURS)
    payload = emulator.job_payload(job_id)
    validate("Job", payload, strict=True)
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad_value

    with pytest.raises(jsonschema.ValidationError):
        validate("Job", payload)


def test_helper_reads_openapi_30_nullable_and_31_type_arrays():
    validate("PaginatedJobList", {"count": 0, "next": None, "previous": None, "results": []})
    validate("PreviewVideosSerialiazer", {"before_video": None, "after_video": None})


def test_strict_mode_refuses_undeclared_fields():
    payload = {"balance_usd": "1.0000", "currency": "credits"}

    validate("CreditsBalance", payload)
    with pytest.raises(jsonschema.ValidationError):
        validate("CreditsBalance", payload, strict=True)


def test_helper_names_an_unknown_component():
    with pytest.raises(KeyError, match="Jobb"):
        validate("Jobb", {})
