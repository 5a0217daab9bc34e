"""Listing endpoints of the emulator: both pagination styles, list orders, scale."""

from __future__ import annotations

import time

import pytest
import requests

from django_tensorpix.testing import FINISHED, TensorPixEmulator
from django_tensorpix.testing.catalogue import TASK_NAMES
from tests.openapi_schema import validate


def follow(http: requests.Session, url: str, component: str) -> list[dict]:
    items: list[dict] = []
    while url:
        page = http.get(url).json()
        validate(component, page, strict=True)
        items.extend(page["results"])
        url = page["next"]
    return items


def test_jobs_page_by_limit_and_offset_with_absolute_links(http, emulator):
    emulator.seed_jobs(25)

    page = http.get(f"{emulator.base_url}/api/jobs/", params={"limit": 10, "offset": 10}).json()

    validate("PaginatedJobList", page, strict=True)
    assert page["count"] == 25
    assert len(page["results"]) == 10
    assert page["next"] == f"{emulator.base_url}/api/jobs/?limit=10&offset=20"
    assert page["previous"] == f"{emulator.base_url}/api/jobs/?limit=10"


def test_following_next_visits_every_job_once(http, emulator):
    ids = emulator.seed_jobs(57)

    items = follow(http, f"{emulator.base_url}/api/jobs/?limit=20", "PaginatedJobList")

    assert sorted(item["id"] for item in items) == sorted(ids)


def test_default_limit_is_100_and_limit_is_capped_at_1000(http, emulator):
    emulator.seed_jobs(1_200, status=FINISHED)

    default = http.get(f"{emulator.base_url}/api/jobs/").json()
    capped = http.get(f"{emulator.base_url}/api/jobs/", params={"limit": 5000}).json()
    nonsense = http.get(f"{emulator.base_url}/api/jobs/", params={"limit": "x", "offset": "-3"})

    assert len(default["results"]) == 100
    assert len(capped["results"]) == 1_000
    assert len(nonsense.json()["results"]) == 100
    assert nonsense.json()["previous"] is None


def test_offset_past_the_end_gives_an_empty_page(http, emulator):
    emulator.seed_jobs(3)

    page = http.get(f"{emulator.base_url}/api/jobs/", params={"offset": 50}).json()

    assert (page["count"], page["results"], page["next"]) == (3, [], None)


def test_newest_first_by_default_then_oldest_and_shuffled(http, emulator):
    ids = emulator.seed_jobs(30)
    url = f"{emulator.base_url}/api/jobs/?limit=30"

    newest = [job["id"] for job in http.get(url).json()["results"]]
    emulator.list_order = "oldest"
    oldest = [job["id"] for job in http.get(url).json()["results"]]
    emulator.list_order = "shuffled"
    shuffled = [job["id"] for job in http.get(url).json()["results"]]

    assert newest == ids[::-1]
    assert oldest == ids
    assert sorted(shuffled) == sorted(ids)
    assert shuffled not in (ids, ids[::-1])
    assert [job["id"] for job in http.get(url).json()["results"]] == shuffled


def test_shuffled_pages_cover_every_job_once(http, emulator):
    ids = emulator.seed_jobs(45)
    emulator.list_order = "shuffled"

    items = follow(http, f"{emulator.base_url}/api/jobs/?limit=10", "PaginatedJobList")

    assert sorted(item["id"] for item in items) == sorted(ids)


def test_unknown_list_order_is_refused(emulator):
    with pytest.raises(ValueError, match="list_order"):
        emulator.list_order = "alphabetical"


def test_ml_models_page_by_page_number(http, emulator):
    first = http.get(f"{emulator.base_url}/api/ml-models/").json()
    second = http.get(first["next"]).json()

    validate("PaginatedMLModelListList", first, strict=True)
    assert first["next"] == f"{emulator.base_url}/api/ml-models/?page=2"
    assert second["previous"] == f"{emulator.base_url}/api/ml-models/"
    assert len(first["results"]) + len(second["results"]) == first["count"]


def test_catalogue_has_a_model_for_every_task(http, emulator):
    models = follow(
        http, f"{emulator.base_url}/api/ml-models/?page_size=5", "PaginatedMLModelListList"
    )

    assert {model["task"] for model in models} == set(TASK_NAMES)
    assert len({model["id"] for model in models}) == len(models)


def test_ml_models_page_size_and_invalid_page(http, emulator):
    url = f"{emulator.base_url}/api/ml-models/"

    big = http.get(url, params={"page_size": 500}).json()
    last = http.get(url, params={"page": "last", "page_size": 5}).json()
    invalid = http.get(url, params={"page": 99})

    assert len(big["results"]) == big["count"]
    assert last["next"] is None
    assert last["previous"] is not None
    assert invalid.status_code == 404
    validate("NotFoundError", invalid.json(), strict=True)


def test_empty_catalogue_can_be_filled_by_hand(http, emulator):
    bare = TensorPixEmulator(catalogue=False)
    model_id = bare.add_ml_model("Test Upscale", 1, upscale_factor=2, max_resolution=100)

    with bare:
        page = requests.get(
            f"{bare.base_url}/api/ml-models/", headers={"Authorization": "Token test-key"}
        ).json()

    assert [model["id"] for model in page["results"]] == [model_id]
    assert page["results"][0]["max_resolution"] == 100


def test_videos_and_restored_videos_page_by_limit_and_offset(http, emulator):
    for _ in range(3):
        emulator.add_video()
    emulator.seed_jobs(4, status=FINISHED)

    videos = follow(http, f"{emulator.base_url}/api/videos/?limit=2", "PaginatedVideoList")
    outputs = follow(
        http, f"{emulator.base_url}/api/restored-videos/?limit=3", "PaginatedRestoredVideoList"
    )

    assert len(videos) == 3
    assert len(outputs) == 4


def test_seeded_mix_has_every_status_with_valid_payloads(http, emulator):
    emulator.seed_jobs(200)

    jobs = follow(http, f"{emulator.base_url}/api/jobs/?limit=100", "PaginatedJobList")

    assert {job["status"] for job in jobs} == {0, 1, 2, -1, -2}
    assert all((job["output_video"] is not None) == (job["status"] == 2) for job in jobs)


def test_seeded_active_jobs_move_on_with_the_clock(http, emulator):
    ids = emulator.seed_jobs(3, status=1) + emulator.seed_jobs(2, status=0)

    emulator.advance(10 * 3600)

    assert {emulator.job_payload(job_id)["status"] for job_id in ids} == {2}


def test_seed_jobs_refuses_an_unknown_status(emulator):
    with pytest.raises(ValueError, match="status"):
        emulator.seed_jobs(1, status=7)


def test_a_page_stays_fast_with_100000_jobs(http, emulator):
    emulator.seed_jobs(100_000)
    url = f"{emulator.base_url}/api/jobs/"

    started = time.monotonic()
    for offset in (0, 50_000, 99_900):
        page = http.get(url, params={"limit": 100, "offset": offset}).json()
        assert len(page["results"]) == 100
    elapsed = time.monotonic() - started

    assert page["count"] == 100_000
    assert elapsed < 1.0
