"""The emulator's uploads, enhanced videos and presigned storage URLs."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests_toolbelt import MultipartEncoder

from django_tensorpix.testing import TensorPixEmulator
from tests.openapi_schema import validate

TEN_HOURS = 10 * 3600


def upload(
    http: requests.Session, emulator: TensorPixEmulator, data: bytes, name: str = "clip.mp4"
):
    encoder = MultipartEncoder(fields={"file": (name, io.BytesIO(data), "video/mp4")})
    return http.post(
        f"{emulator.base_url}/api/videos/",
        data=encoder,
        headers={"Content-Type": encoder.content_type},
    )


def finished_job(http: requests.Session, emulator: TensorPixEmulator) -> dict:
    response = http.post(
        f"{emulator.base_url}/api/jobs/from-url/",
        json={"video_url": "https://media.example.com/a.mp4", "ml_models": [1]},
    )
    job_id = response.json()["id"]
    emulator.advance(TEN_HOURS)
    job = http.get(f"{emulator.base_url}/api/jobs/{job_id}/").json()
    validate("Job", job, strict=True)
    return job


# -- uploads ----------------------------------------------------------------------------------


def test_upload_is_counted_and_becomes_ready_after_processing(http, emulator):
    data = b"\x00\x00\x00\x18ftypmp42" + b"x" * 300_000

    response = upload(http, emulator, data, name="wedding_1080p.mp4")

    assert response.status_code == 201, response.text
    created = response.json()
    validate("Video", created, strict=True)
    assert created["size"] == len(data)
    assert created["file"] is None
    assert created["width"] is None
    assert emulator.storage_used == len(data)
    emulator.advance(emulator.upload_processing_s)
    ready = http.get(f"{emulator.base_url}/api/videos/{created['id']}/").json()
    validate("Video", ready, strict=True)
    assert ready["file"] is not None
    assert ready["thumbnail"] is not None
    assert (ready["width"], ready["height"]) == (1920, 1080)
    assert ready["owner"] == emulator.owner_email


def test_chunked_streamed_upload_is_parsed(http, emulator):
    encoder = MultipartEncoder(
        fields={"file": ("big.mov", io.BytesIO(b"y" * 1_000_000), "video/quicktime")}
    )

    def body() -> Iterator[bytes]:
        while chunk := encoder.read(8192):
            yield chunk

    response = http.post(
        f"{emulator.base_url}/api/videos/",
        data=body(),
        headers={"Content-Type": encoder.content_type},
    )

    assert response.status_code == 201, response.text
    assert response.json()["size"] == 1_000_000


def test_upload_whose_bytes_contain_boundary_like_text_keeps_its_size(http, emulator):
    data = b"--not-the-boundary\r\n\r\n--" * 5_000

    response = upload(http, emulator, data)

    assert response.json()["size"] == len(data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"other": ("x.mp4", b"abc", "video/mp4")}, "No file was submitted."),
        ({"file": ("x.mp4", b"", "video/mp4")}, "The submitted file is empty."),
        ({"file": ("notes.txt", b"hello", "text/plain")}, "Upload a valid video file."),
    ],
)
def test_bad_uploads_are_refused(http, emulator, fields, message):
    encoder = MultipartEncoder(fields=fields)

    response = http.post(
        f"{emulator.base_url}/api/videos/",
        data=encoder,
        headers={"Content-Type": encoder.content_type},
    )

    assert response.status_code == 400
    validate("ValidationError", response.json(), strict=True)
    assert response.json()["errors"] == {"file": [message]}


def test_upload_must_be_multipart(http, emulator):
    response = http.post(f"{emulator.base_url}/api/videos/", json={"file": "x"})

    assert response.status_code == 415


def test_malformed_multipart_is_a_400(http, emulator):
    response = http.post(
        f"{emulator.base_url}/api/videos/",
        data=b'--abc\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nxyz',
        headers={"Content-Type": "multipart/form-data; boundary=abc"},
    )

    assert response.status_code == 400
    validate("ValidationError", response.json(), strict=True)


def test_upload_over_the_storage_quota_is_refused(http, emulator):
    emulator.storage_quota = 1_000

    response = upload(http, emulator, b"z" * 2_000)

    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith("Storage quota exceeded")
    assert emulator.storage_used == 0


def test_deleting_a_video_frees_storage_and_hides_it(http, emulator):
    video_id = emulator.add_video(size=10_000)

    response = http.delete(f"{emulator.base_url}/api/videos/{video_id}/")

    assert response.status_code == 204
    assert emulator.storage_used == 0
    assert http.get(f"{emulator.base_url}/api/videos/{video_id}/").status_code == 404
    assert http.delete(f"{emulator.base_url}/api/videos/{video_id}/").status_code == 404


def test_video_used_by_an_active_job_cannot_be_deleted_until_it_ends(http, emulator):
    video_id = emulator.add_video()
    http.post(f"{emulator.base_url}/api/jobs/", json={"input_video": video_id, "ml_models": [4]})

    refused = http.delete(f"{emulator.base_url}/api/videos/{video_id}/")
    emulator.advance(TEN_HOURS)
    accepted = http.delete(f"{emulator.base_url}/api/videos/{video_id}/")

    assert refused.status_code == 409
    validate("GenericError", refused.json(), strict=True)
    assert accepted.status_code == 204


def test_from_url_inputs_are_not_listed_and_have_no_file(http, emulator):
    job = finished_job(http, emulator)

    listed = http.get(f"{emulator.base_url}/api/videos/").json()

    assert listed["count"] == 0
    assert job["input_video"]["file"] is None
    assert job["input_video"]["external_url"] == "https://media.example.com/a.mp4"


# -- restored videos ----------------------------------------------------------------------------


def test_restored_video_is_listed_and_retrievable(http, emulator):
    output = finished_job(http, emulator)["output_video"]

    listed = http.get(f"{emulator.base_url}/api/restored-videos/").json()
    retrieved = http.get(f"{emulator.base_url}/api/restored-videos/{output['id']}/").json()

    validate("PaginatedRestoredVideoList", listed, strict=True)
    validate("RestoredVideo", retrieved, strict=True)
    assert [item["id"] for item in listed["results"]] == [output["id"]]
    assert retrieved["job_id"] == output["job_id"]


def test_deleting_the_output_keeps_it_on_the_job_marked_deleted(http, emulator):
    job = finished_job(http, emulator)
    output_id = job["output_video"]["id"]
    used = emulator.storage_used

    response = http.delete(f"{emulator.base_url}/api/restored-videos/{output_id}/")
    after = http.get(f"{emulator.base_url}/api/jobs/{job['id']}/").json()

    assert response.status_code == 204
    validate("Job", after, strict=True)
    assert after["status"] == 2
    assert after["output_video"]["id"] == output_id
    assert after["output_video"]["deleted"] is not None
    assert after["output_video"]["file"] is None
    assert after["output_video"]["preview_videos"] == {"before_video": None, "after_video": None}
    assert emulator.storage_used == used - job["output_video"]["size"]
    assert http.get(f"{emulator.base_url}/api/restored-videos/{output_id}/").status_code == 404
    assert http.delete(f"{emulator.base_url}/api/restored-videos/{output_id}/").status_code == 404
    assert http.get(f"{emulator.base_url}/api/restored-videos/").json()["count"] == 0


# -- presigned URLs ------------------------------------------------------------------------------


def test_every_read_signs_the_urls_afresh(http, emulator):
    job = finished_job(http, emulator)

    again = http.get(f"{emulator.base_url}/api/jobs/{job['id']}/").json()

    for field in ("file", "thumbnail"):
        first, second = job["output_video"][field], again["output_video"][field]
        assert first != second
        assert urlsplit(first).path == urlsplit(second).path
        assert "X-Expires" in parse_qs(urlsplit(first).query)


@pytest.mark.parametrize("field", ["file", "thumbnail", "before_video", "after_video"])
def test_presigned_url_serves_bytes_without_authorization(emulator, http, field):
    output = finished_job(http, emulator)["output_video"]
    url = output["preview_videos"][field] if field.endswith("_video") else output[field]

    response = requests.get(url)

    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    if field == "file":
        assert len(response.content) == output["size"]
        assert response.content[4:8] == b"ftyp"
    if field == "thumbnail":
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.content[:2] == b"\xff\xd8"
        assert response.content[-2:] == b"\xff\xd9"


def test_downloads_are_repeatable_and_support_ranges(emulator, http):
    output = finished_job(http, emulator)["output_video"]

    whole = requests.get(output["file"]).content
    tail = requests.get(output["file"], headers={"Range": "bytes=1000-"})
    middle = requests.get(output["file"], headers={"Range": "bytes=10-19"})
    head = requests.head(output["file"])

    assert requests.get(output["file"]).content == whole
    assert tail.status_code == 206
    assert tail.content == whole[1000:]
    assert tail.headers["Content-Range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert middle.content == whole[10:20]
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(whole))


def test_uploaded_video_file_serves_its_reported_size(http, emulator):
    video_id = emulator.add_video(size=123_457)

    video = http.get(f"{emulator.base_url}/api/videos/{video_id}/").json()

    assert len(requests.get(video["file"]).content) == 123_457


def test_presigned_url_expires_on_the_emulator_clock(http, emulator):
    output = finished_job(http, emulator)["output_video"]

    emulator.advance(emulator.signer.ttl + 1)
    expired = requests.get(output["file"])
    fresh = http.get(f"{emulator.base_url}/api/restored-videos/{output['id']}/").json()["file"]

    assert expired.status_code == 403
    assert b"Request has expired" in expired.content
    assert requests.get(fresh).status_code == 200


def test_tampered_or_unsigned_url_is_refused(http, emulator):
    url = finished_job(http, emulator)["output_video"]["file"]
    tampered = url.replace("X-Nonce=", "X-Nonce=9")

    assert requests.get(tampered).status_code == 403
    assert requests.get(url.split("?")[0]).status_code == 403


def test_deleted_output_url_is_gone(http, emulator):
    output = finished_job(http, emulator)["output_video"]

    http.delete(f"{emulator.base_url}/api/restored-videos/{output['id']}/")

    assert requests.get(output["file"]).status_code == 404


def test_large_reported_size_streams_without_being_held(http, emulator):
    emulator.output_size_range = (20_000_000, 20_000_001)
    output = finished_job(http, emulator)["output_video"]

    with requests.get(output["file"], stream=True) as response:
        received = sum(len(chunk) for chunk in response.iter_content(1 << 20))

    assert received == output["size"] == 20_000_000


def test_upload_named_with_the_failure_marker_makes_its_job_fail(http, emulator):
    video_id = emulator.add_video(name="demo-fail.mp4")
    created = http.post(
        f"{emulator.base_url}/api/jobs/", json={"input_video": video_id, "ml_models": [4]}
    )

    emulator.advance(TEN_HOURS)

    assert emulator.job_payload(created.json()["id"])["status"] == -1


def test_deleted_upload_shows_on_its_job_without_files(http, emulator):
    video_id = emulator.add_video()
    created = http.post(
        f"{emulator.base_url}/api/jobs/", json={"input_video": video_id, "ml_models": [4]}
    ).json()
    emulator.advance(TEN_HOURS)

    http.delete(f"{emulator.base_url}/api/videos/{video_id}/")
    job = http.get(f"{emulator.base_url}/api/jobs/{created['id']}/").json()

    validate("Job", job, strict=True)
    assert job["input_video"]["id"] == video_id
    assert (job["input_video"]["file"], job["input_video"]["thumbnail"]) == (None, None)
