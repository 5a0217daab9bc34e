"""The emulator's jobs: creation in every body encoding, validation, lifecycle, cancel."""

from __future__ import annotations

import itertools
import json
import time
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests_toolbelt import MultipartEncoder

from django_tensorpix.testing import TensorPixEmulator
from django_tensorpix.testing.clock import Clock
from tests.openapi_schema import validate

UPSCALE_2X, UPSCALE_4X, DENOISE, DENOISE_STRONG, SHARPEN = 1, 2, 4, 5, 6
FPS_BOOST, SLOW_MOTION = 12, 13
TEN_HOURS = 10 * 3600


def get_job(http: requests.Session, emulator: TensorPixEmulator, job_id: int) -> dict:
    response = http.get(f"{emulator.base_url}/api/jobs/{job_id}/")
    assert response.status_code == 200
    payload = response.json()
    validate("Job", payload, strict=True)
    return payload


def from_url(
    http: requests.Session, emulator: TensorPixEmulator, **body: object
) -> requests.Response:
    body.setdefault("video_url", "https://media.example.com/clip_720p.mp4")
    body.setdefault("ml_models", [UPSCALE_2X])
    return http.post(f"{emulator.base_url}/api/jobs/from-url/", json=body)


def create_from_url(http: requests.Session, emulator: TensorPixEmulator, **body: object) -> int:
    response = from_url(http, emulator, **body)
    assert response.status_code == 201, response.text
    validate("EnhanceJobResponse", response.json(), strict=True)
    return response.json()["id"]


def test_from_url_job_is_created_from_json(http, emulator):
    response = from_url(http, emulator, ml_models=[UPSCALE_2X, DENOISE], crf=18)

    assert response.status_code == 201
    body = response.json()
    validate("EnhanceJobResponse", body, strict=True)
    assert body["status"] == 0
    assert Decimal(body["cost_usd"]) > 0


def test_from_url_job_is_created_from_form_encoded_body(http, emulator):
    response = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        data={
            "video_url": "https://media.example.com/clip.mp4",
            "ml_models": [UPSCALE_2X, SHARPEN],
            "sharpen_strength": "4.5",
            "preview": "true",
        },
    )

    assert response.status_code == 201, response.text
    job = get_job(http, emulator, response.json()["id"])
    assert [model["id"] for model in job["ml_models"]] == [UPSCALE_2X, SHARPEN]
    assert job["sharpen_strength"] == 4.5
    assert job["preview"] is True
    assert job["cost_usd"] == "0.0000"


def test_job_on_uploaded_video_is_created_from_multipart_body(http, emulator):
    video_id = emulator.add_video(name="holiday.mp4")
    encoder = MultipartEncoder(
        fields=[
            ("input_video", str(video_id)),
            ("ml_models", str(UPSCALE_2X)),
            ("ml_models", str(DENOISE)),
            ("codec", "prores_ks"),
            ("qscale", "9"),
            ("prores_profile", "3"),
        ]
    )

    response = http.post(
        f"{emulator.base_url}/api/jobs/",
        data=encoder,
        headers={"Content-Type": encoder.content_type},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    validate("CreateJob", body, strict=True)
    assert body["input_video"] == video_id
    assert body["ml_models"] == [UPSCALE_2X, DENOISE]
    assert (body["codec"], body["qscale"], body["prores_profile"]) == ("prores_ks", 9, 3)
    assert body["output_video"] is None


def test_job_creation_charges_the_balance(http, emulator):
    emulator.balance = Decimal("100.0000")
    response = from_url(http, emulator)

    balance = http.get(f"{emulator.base_url}/api/accounts/profile/balance/").json()

    validate("CreditsBalance", balance, strict=True)
    assert Decimal(balance["balance_usd"]) == Decimal("100") - Decimal(response.json()["cost_usd"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("crf", 52, "Ensure this value is less than or equal to 51."),
        ("crf", -1, "Ensure this value is greater than or equal to 0."),
        ("crf", "high", "A valid integer is required."),
        ("grain", 1.5, "Ensure this value is less than or equal to 1."),
        ("playback_speed", 0.05, "Ensure this value is greater than or equal to 0.1."),
        ("target_fps", 241, "Ensure this value is less than or equal to 240."),
        ("stabilization_smoothing", 41, "Ensure this value is less than or equal to 40."),
        ("sharpen_strength", "much", "A valid number is required."),
        ("sharpen_strength", 10**400, "A valid number is required."),
        ("codec", "vp9", '"vp9" is not a valid choice.'),
        ("container", "avi", '"avi" is not a valid choice.'),
        ("chroma_subsampling", "yuv411p", '"yuv411p" is not a valid choice.'),
        ("output_resolution", 1000, '"1000" is not a valid choice.'),
        ("comparison", "maybe", "Must be a valid boolean."),
        ("start_frame", -1, "Ensure this value is greater than or equal to 0."),
        ("end_frame", 0, "Ensure this value is greater than or equal to 1."),
        ("video_url", "not a url", "Enter a valid URL."),
        ("video_url", "", "This field may not be blank."),
        ("ml_models", [], "This list may not be empty."),
        ("ml_models", "1", 'Expected a list of items but got type "str".'),
        ("ml_models", [999], 'Invalid pk "999" - object does not exist.'),
    ],
)
def test_invalid_option_is_refused_with_the_field_error(http, emulator, field, value, message):
    response = from_url(http, emulator, **{field: value})

    assert response.status_code == 400
    body = response.json()
    validate("ValidationError", body, strict=True)
    assert body["errors"] == {field: [message]}


def test_missing_required_fields_are_all_reported(http, emulator):
    response = http.post(f"{emulator.base_url}/api/jobs/", json={})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "input_video": ["This field is required."],
        "ml_models": ["This field is required."],
    }


def test_end_frame_must_come_after_start_frame(http, emulator):
    response = from_url(http, emulator, start_frame=100, end_frame=100)

    assert response.status_code == 400
    assert "end_frame" in response.json()["errors"]


def test_end_frame_is_ignored_for_previews(http, emulator):
    assert from_url(http, emulator, start_frame=100, end_frame=50, preview=True).status_code == 201


def test_two_filters_of_one_task_are_refused(http, emulator):
    response = from_url(http, emulator, ml_models=[DENOISE, DENOISE_STRONG])

    assert response.status_code == 400
    assert response.json()["errors"]["ml_models"] == [
        "Only one AI filter per task can be used (Denoise)."
    ]


def test_input_above_a_filters_max_resolution_is_refused(http, emulator):
    response = from_url(
        http,
        emulator,
        video_url="https://media.example.com/concert_1080p.mp4",
        ml_models=[UPSCALE_4X],
    )

    assert response.status_code == 400
    assert "1920x1080" in response.json()["errors"]["ml_models"][0]


@pytest.mark.parametrize(
    "url",
    ["https://www.youtube.com/watch?v=abc", "https://media.example.com/page.html"],
)
def test_url_that_is_not_a_direct_video_is_refused(http, emulator, url):
    response = from_url(http, emulator, video_url=url)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["video_url"]


def test_insufficient_credits_is_a_400_that_says_so(http, emulator):
    emulator.balance = Decimal("0.5000")

    response = from_url(http, emulator)

    assert response.status_code == 400
    body = response.json()
    validate("ValidationError", body, strict=True)
    assert body["non_field_errors"][0].startswith("Not enough Credits")
    assert emulator.balance == Decimal("0.5000")


def test_free_preview_needs_no_credits(http, emulator):
    emulator.balance = Decimal("0")

    assert from_url(http, emulator, preview=True).status_code == 201


def test_full_storage_refuses_new_jobs(http, emulator):
    emulator.add_video(size=5_000)
    emulator.storage_quota = 5_000

    response = from_url(http, emulator)

    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith("Storage quota exceeded")


def test_job_on_unknown_or_unready_video_is_refused(http, emulator):
    upload = emulator.state.add_upload("fresh.mp4", 1000)
    url = f"{emulator.base_url}/api/jobs/"

    unknown = http.post(url, json={"input_video": 1, "ml_models": [UPSCALE_2X]})
    unready = http.post(url, json={"input_video": upload.id, "ml_models": [UPSCALE_2X]})

    assert unknown.json()["errors"] == {"input_video": ['Invalid pk "1" - object does not exist.']}
    assert "not uploaded completely" in unready.json()["errors"]["input_video"][0]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/json", b"{not json", 400),
        ("application/json", b"[1, 2]", 400),
        ("text/plain", b"video_url=x", 415),
    ],
)
def test_unparseable_bodies_are_refused(http, emulator, content_type, body, status):
    response = http.post(
        f"{emulator.base_url}/api/jobs/from-url/", data=body, headers={"Content-Type": content_type}
    )

    assert response.status_code == status
    if status == 400:
        validate("ValidationError", response.json(), strict=True)
    else:
        validate("GenericError", response.json(), strict=True)


def test_chunked_json_body_is_read(http, emulator):
    payload = json.dumps({"video_url": "https://media.example.com/a.mp4", "ml_models": [4]})

    response = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        data=iter([payload[:10].encode(), payload[10:].encode()]),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 201


# -- lifecycle -----------------------------------------------------------------------------


def test_job_goes_from_queue_through_processing_to_finished(http, emulator):
    job_id = create_from_url(http, emulator)

    queued = get_job(http, emulator, job_id)
    emulator.advance(emulator.queue_delay + 1)
    processing = get_job(http, emulator, job_id)
    emulator.advance(60)
    later = get_job(http, emulator, job_id)
    emulator.advance(TEN_HOURS)
    finished = get_job(http, emulator, job_id)

    assert (queued["status"], queued["processing_progress"], queued["output_video"]) == (
        0,
        0.0,
        None,
    )
    assert queued["finished"] is None
    assert queued["eta_s"] > 0
    assert processing["status"] == 1
    assert 0 <= processing["processing_progress"] < later["processing_progress"] < 1
    assert later["eta_s"] > 0
    assert finished["status"] == 2
    assert finished["processing_progress"] == 1.0
    assert finished["finished"] is not None
    output = finished["output_video"]
    assert output["job_id"] == job_id
    assert output["file"]
    assert output["thumbnail"]
    assert output["preview_videos"]["before_video"]
    assert output["preview_videos"]["after_video"]
    assert 50_000 <= output["size"] <= 500_000
    assert (output["width"], output["height"]) == (2560, 1440)


def test_eta_is_noisy_but_positive_while_processing(http, emulator):
    job_id = create_from_url(http, emulator)
    emulator.advance(emulator.queue_delay)

    etas = []
    for _ in range(5):
        emulator.advance(1)
        etas.append(get_job(http, emulator, job_id)["eta_s"])

    assert all(eta > 0 for eta in etas)
    differences = {round(b - a, 1) for a, b in itertools.pairwise(etas)}
    assert len(differences) > 1


def test_jobs_beyond_the_active_limit_wait_in_fifo_order(http, emulator):
    emulator.max_active_jobs = 2
    job_ids = [create_from_url(http, emulator) for _ in range(4)]

    emulator.advance(emulator.queue_delay + 1)
    statuses = [get_job(http, emulator, job_id)["status"] for job_id in job_ids]
    first_duration = emulator.state.jobs[job_ids[0]].duration
    emulator.advance(first_duration)
    after_first_finish = [get_job(http, emulator, job_id)["status"] for job_id in job_ids]

    assert statuses == [1, 1, 0, 0]
    assert after_first_finish == [2, 2, 1, 1]


def test_failed_job_by_marker_url_ends_failed_without_output(http, emulator):
    emulator.balance = Decimal("100")
    job_id = create_from_url(http, emulator, video_url="https://media.example.com/clip-fail.mp4")

    emulator.advance(TEN_HOURS)
    job = get_job(http, emulator, job_id)

    assert job["status"] == -1
    assert job["output_video"] is None
    assert 0 < job["processing_progress"] < 1
    assert emulator.balance == Decimal("100"), "a failed job is refunded"


def test_fail_job_makes_a_processing_job_fail(http, emulator):
    job_id = create_from_url(http, emulator)
    emulator.advance(emulator.queue_delay + 1)

    emulator.fail_job(job_id)
    emulator.advance(TEN_HOURS)

    assert get_job(http, emulator, job_id)["status"] == -1


def test_fail_job_refuses_a_job_that_already_ended(http, emulator):
    job_id = create_from_url(http, emulator)
    emulator.advance(TEN_HOURS)

    with pytest.raises(ValueError, match="already ended"):
        emulator.fail_job(job_id)


def test_failure_rate_one_fails_every_new_job(http, emulator):
    emulator.failure_rate = 1.0
    job_ids = [create_from_url(http, emulator) for _ in range(3)]

    emulator.advance(TEN_HOURS)

    assert {get_job(http, emulator, job_id)["status"] for job_id in job_ids} == {-1}


def test_manual_clock_stands_still_without_advance(http, emulator):
    job_id = create_from_url(http, emulator)

    assert [get_job(http, emulator, job_id)["status"] for _ in range(3)] == [0, 0, 0]


def test_real_time_clock_finishes_a_job_in_duration_divided_by_speed():
    with TensorPixEmulator(speed=1_000.0) as fast:
        fast.queue_delay = 0
        response = requests.post(
            f"{fast.base_url}/api/jobs/from-url/",
            headers={"Authorization": "Token test-key"},
            json={"video_url": "https://media.example.com/a.mp4", "ml_models": [DENOISE]},
        )
        started = time.monotonic()
        job_id = response.json()["id"]
        real_duration = fast.state.jobs[job_id].duration / 1_000.0

        while fast.job_payload(job_id)["status"] != 2 and time.monotonic() - started < 10:
            time.sleep(0.01)

        assert fast.job_payload(job_id)["status"] == 2
        assert real_duration * 0.9 <= time.monotonic() - started < real_duration + 2


def test_advance_also_moves_a_real_time_clock():
    clock = Clock(speed=20.0)
    before = clock.now()

    clock.advance(600)

    assert 600 <= clock.now() - before < 610


def test_clock_refuses_to_go_backwards_or_run_at_zero_speed():
    with pytest.raises(ValueError, match="forward"):
        Clock().advance(-1)
    with pytest.raises(ValueError, match="positive"):
        Clock(speed=0)


# -- cancel --------------------------------------------------------------------------------


def test_cancel_queued_job_gives_204_status_minus_two_and_full_refund(http, emulator):
    emulator.balance = Decimal("100")
    job_id = create_from_url(http, emulator)

    response = http.delete(f"{emulator.base_url}/api/jobs/{job_id}/")

    assert response.status_code == 204
    assert response.content == b""
    job = get_job(http, emulator, job_id)
    assert (job["status"], job["output_video"]) == (-2, None)
    assert emulator.balance == Decimal("100")


def test_cancel_processing_job_refunds_most_credits_and_frees_the_slot(http, emulator):
    emulator.max_active_jobs = 1
    emulator.balance = Decimal("100")
    first, second = create_from_url(http, emulator), create_from_url(http, emulator)
    emulator.advance(emulator.queue_delay + 1)
    cost = Decimal(get_job(http, emulator, first)["cost_usd"])

    http.delete(f"{emulator.base_url}/api/jobs/{first}/")
    emulator.advance(1)

    assert get_job(http, emulator, first)["status"] == -2
    assert get_job(http, emulator, second)["status"] == 1
    second_cost = Decimal(get_job(http, emulator, second)["cost_usd"])
    assert emulator.balance == Decimal("100") - second_cost - cost * Decimal("0.1")


def test_cancel_twice_is_a_409(http, emulator):
    job_id = create_from_url(http, emulator)
    http.delete(f"{emulator.base_url}/api/jobs/{job_id}/")

    response = http.delete(f"{emulator.base_url}/api/jobs/{job_id}/")

    assert response.status_code == 409
    validate("GenericError", response.json(), strict=True)


def test_cancel_finished_job_is_a_400(http, emulator):
    job_id = create_from_url(http, emulator)
    emulator.advance(TEN_HOURS)

    response = http.delete(f"{emulator.base_url}/api/jobs/{job_id}/")

    assert response.status_code == 400
    validate("ValidationError", response.json(), strict=True)
    assert get_job(http, emulator, job_id)["status"] == 2


def test_unknown_job_is_a_404(http, emulator):
    for method in ("GET", "DELETE"):
        response = http.request(method, f"{emulator.base_url}/api/jobs/999999/")
        assert response.status_code == 404
        validate("NotFoundError", response.json(), strict=True)


# -- options shape the output ---------------------------------------------------------------


def test_fps_boost_sets_interpolation_factor_and_output_framerate(http, emulator):
    job_id = create_from_url(http, emulator, ml_models=[FPS_BOOST], target_fps=60)
    emulator.advance(TEN_HOURS)

    job = get_job(http, emulator, job_id)

    assert job["fps_interpolation_factor"] == 2.0
    assert job["output_video"]["framerate"] == 60.0


def test_output_resolution_overrides_the_upscale(http, emulator):
    job_id = create_from_url(http, emulator, ml_models=[UPSCALE_2X], output_resolution=1920)
    emulator.advance(TEN_HOURS)

    output = get_job(http, emulator, job_id)["output_video"]

    assert (output["width"], output["height"]) == (1920, 1080)


def test_slow_motion_stretches_the_output(http, emulator):
    job_id = create_from_url(http, emulator, ml_models=[SLOW_MOTION], playback_speed=0.5)
    emulator.advance(TEN_HOURS)

    assert get_job(http, emulator, job_id)["output_video"]["n_frames"] == 1800


FIELDS = [
    "video_url",
    "ml_models",
    "codec",
    "crf",
    "container",
    "chroma_subsampling",
    "output_resolution",
    "grain",
    "comparison",
    "stabilization_smoothing",
    "target_fps",
    "playback_speed",
    "sharpen_strength",
    "preview",
    "start_frame",
    "end_frame",
]
ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=5,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(st.sampled_from(FIELDS), ANY_VALUE, max_size=8))
def test_any_json_body_gets_a_201_or_a_schema_shaped_400_never_a_500(http, emulator, body):
    response = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        data=json.dumps(body),  # NaN and Infinity included, as Python clients may send them
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        validate("ValidationError", response.json(), strict=True)
    else:
        validate("EnhanceJobResponse", response.json(), strict=True)
