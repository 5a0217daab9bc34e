"""TensorPixClient against the emulator over loopback: every endpoint and error status."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from django_tensorpix.client import USER_AGENT, TensorPixClient
from django_tensorpix.conf import Account
from django_tensorpix.exceptions import (
    APIError,
    AuthenticationError,
    Conflict,
    InvalidRequest,
    NotFound,
)

FINISHED, CANCELED, PROCESSING = 2, -2, 1


@pytest.fixture
def make_client(emulator) -> Iterator[Callable[..., TensorPixClient]]:
    """Builds clients for the emulator after the test has adjusted settings."""
    clients: list[TensorPixClient] = []

    def make(api_key: str = emulator.api_key, **options) -> TensorPixClient:
        client = TensorPixClient(Account("default", api_key, emulator.base_url), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client) -> TensorPixClient:
    return make_client()


@pytest.fixture
def small_pages(settings) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 2}


def _queries(emulator, method: str, path: str) -> list[dict[str, list[str]]]:
    requests = emulator.requests
    return [parse_qs(r.query) for r in requests if (r.method, r.path) == (method, path)]


def _ml_model_id(client: TensorPixClient) -> int:
    return next(iter(client.iter_ml_models()))["id"]


class RecordingReader(io.BytesIO):
    """A file that remembers the largest read asked of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_sizes: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.read_sizes.append(-1 if size is None else size)
        return super().read(size)


# Account and client set-up


def test_get_balance_returns_the_credits_as_a_decimal_string(emulator, client):
    emulator.balance = Decimal("123.4500")

    balance = client.get_balance()

    assert Decimal(balance["balance_usd"]) == Decimal("123.45")


def test_for_account_reads_key_and_base_url_from_settings(emulator, settings):
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "API_KEY": emulator.api_key,
        "BASE_URL": emulator.base_url + "/",
    }
    with TensorPixClient.for_account() as client:
        assert client.base_url == emulator.base_url
        assert "balance_usd" in client.get_balance()


def test_client_repr_names_the_account_but_not_the_key(client):
    assert "default" in repr(client)
    assert "test-key" not in repr(client)
    assert "test-key" not in repr(client.account)


def test_user_agent_names_package_and_requests():
    assert USER_AGENT.startswith("django-tensorpix/0.")
    assert "(+python-requests/2." in USER_AGENT


def test_wrong_key_raises_authentication_error_naming_the_request(make_client):
    client = make_client(api_key="not-the-key")

    with pytest.raises(AuthenticationError) as caught:
        client.get_balance()

    assert caught.value.status == 401
    assert str(caught.value).startswith("GET /api/accounts/profile/balance/ failed: 401")
    assert "not-the-key" not in str(caught.value)


# Jobs


def test_iter_jobs_follows_limit_offset_pages_to_the_end(emulator, small_pages, make_client):
    seeded = emulator.seed_jobs(5)
    client = make_client()

    pages = list(client.iter_job_pages())

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [page.total for page in pages] == [5, 5, 5]
    assert sorted(job["id"] for page in pages for job in page) == sorted(seeded)
    assert [(q["limit"], q.get("offset")) for q in _queries(emulator, "GET", "/api/jobs/")] == [
        (["2"], None),
        (["2"], ["2"]),
        (["2"], ["4"]),
    ]


def test_iter_jobs_streams_one_page_at_a_time(emulator, small_pages, make_client):
    emulator.seed_jobs(6)
    jobs = make_client().iter_jobs()

    next(jobs)

    assert len(_queries(emulator, "GET", "/api/jobs/")) == 1


def test_iter_jobs_of_an_empty_account_yields_nothing(client):
    assert list(client.iter_jobs()) == []


def test_get_job_returns_the_payload_the_emulator_serves(emulator, client):
    (job_id,) = emulator.seed_jobs(1, status=FINISHED)

    job = client.get_job(job_id)

    expected = emulator.job_payload(job_id)
    assert job["status"] == FINISHED
    assert job["output_video"]["id"] == expected["output_video"]["id"]
    # Presigned URLs are signed afresh on every read, so only the rest compares equal.
    assert {**job, "output_video": None} == {**expected, "output_video": None}


def test_get_unknown_job_raises_not_found_naming_the_request(client):
    with pytest.raises(NotFound) as caught:
        client.get_job(999_999)

    error = caught.value
    assert (error.status, error.method, error.path) == (404, "GET", "/api/jobs/999999/")
    assert str(error).startswith("GET /api/jobs/999999/ failed: 404")
    assert isinstance(error, LookupError)


def test_create_job_on_an_uploaded_video(emulator, client):
    video_id = emulator.add_video()
    model_id = _ml_model_id(client)

    created = client.create_job(input_video=video_id, ml_models=[model_id], crf=20)

    assert created["input_video"] == video_id
    assert Decimal(created["cost_usd"]) >= 0
    assert emulator.job_payload(created["id"])["input_video"]["id"] == video_id


def test_create_job_from_url(emulator, client):
    model_id = _ml_model_id(client)

    created = client.create_job_from_url(
        video_url="https://videos.example.com/input.mp4", ml_models=[model_id], preview=True
    )

    assert emulator.job_payload(created["id"])["preview"] is True
    assert [r.method for r in emulator.requests if r.path == "/api/jobs/from-url/"] == ["POST"]


def test_invalid_job_raises_api_error_with_the_parsed_body(emulator, client):
    video_id = emulator.add_video()

    with pytest.raises(APIError) as caught:
        client.create_job(input_video=video_id, ml_models=[])

    error = caught.value
    assert type(error) is InvalidRequest
    assert error.status == 400
    assert "ml_models" in error.field_errors
    assert "ml_models" in error.body["errors"]
    assert str(error).startswith("POST /api/jobs/ failed: 400 ml_models:")


def test_job_costing_more_than_the_balance_is_an_invalid_request_with_the_message(emulator, client):
    # TensorPix's guides say "not enough Credits" is a 400 validation error, shaped like any
    # other: the client classifies by status and hands the messages on, it does not guess.
    model_id = _ml_model_id(client)
    emulator.balance = Decimal("0")

    with pytest.raises(InvalidRequest) as caught:
        client.create_job_from_url(
            video_url="https://videos.example.com/a.mp4", ml_models=[model_id]
        )

    assert caught.value.status == 400
    assert any("Credits" in message for message in caught.value.non_field_errors)


def test_cancel_job_then_cancel_again_is_a_conflict(emulator, client):
    (job_id,) = emulator.seed_jobs(1, status=PROCESSING)

    assert client.cancel_job(job_id) is None
    assert emulator.job_payload(job_id)["status"] == CANCELED
    with pytest.raises(Conflict) as caught:
        client.cancel_job(job_id)
    assert caught.value.status == 409
    assert str(caught.value).startswith(f"DELETE /api/jobs/{job_id}/ failed: 409")


# AI filters (page/page_size pagination)


def test_iter_ml_models_follows_page_number_pages(emulator, small_pages, make_client):
    models = list(make_client().iter_ml_models())

    queries = _queries(emulator, "GET", "/api/ml-models/")
    assert len(models) > 2, "the catalogue should span several pages of two"
    assert len({model["id"] for model in models}) == len(models)
    assert len(queries) == (len(models) + 1) // 2
    assert all(q["page_size"] == ["2"] for q in queries)
    assert [q.get("page") for q in queries[:2]] == [None, ["2"]]


# Uploaded videos


def test_upload_video_streams_the_file_in_bounded_reads(emulator, settings, make_client):
    settings.TENSORPIX = {**settings.TENSORPIX, "UPLOAD_CHUNK_SIZE": 4096}
    data = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 400
    fileobj = RecordingReader(data)

    video = make_client().upload_video(fileobj, "holiday.mp4")

    assert -1 not in fileobj.read_sizes
    assert max(fileobj.read_sizes) <= 4096
    assert len(fileobj.read_sizes) >= len(data) // 4096
    assert video["name"].startswith("holiday")
    assert [r.method for r in emulator.requests if r.path == "/api/videos/"] == ["POST"]


def test_upload_of_a_large_file_never_reads_it_whole(client):
    fileobj = RecordingReader(b"\x00" * (3 * 1024 * 1024 + 17))

    client.upload_video(fileobj, "large.mp4")

    assert -1 not in fileobj.read_sizes
    assert max(fileobj.read_sizes) <= 1024 * 1024, "UPLOAD_CHUNK_SIZE defaults to 1 MiB"
    assert fileobj.tell() == len(fileobj.getvalue()), "the whole file should have been sent"


def test_uploaded_video_is_listed_fetched_and_deleted(client):
    uploaded = client.upload_video(io.BytesIO(b"x" * 2048), "clip.mov", "video/quicktime")

    assert uploaded["id"] in {video["id"] for video in client.iter_videos()}
    assert client.get_video(uploaded["id"])["id"] == uploaded["id"]
    assert client.delete_video(uploaded["id"]) is None
    with pytest.raises(NotFound):
        client.get_video(uploaded["id"])


def test_upload_over_the_storage_quota_is_an_invalid_request(emulator, client):
    emulator.storage_quota = 0

    with pytest.raises(InvalidRequest) as caught:
        client.upload_video(io.BytesIO(b"x" * 2048), "big.mp4")

    assert str(caught.value).startswith("POST /api/videos/ failed: 400")
    assert caught.value.non_field_errors


def test_iter_videos_follows_pages(emulator, small_pages, make_client):
    added = {emulator.add_video() for _ in range(3)}

    pages = list(make_client().iter_video_pages())

    assert [len(page) for page in pages] == [2, 1]
    assert {video["id"] for page in pages for video in page} == added


def test_deleting_a_video_an_active_job_uses_is_a_conflict(emulator, client):
    video_id = emulator.add_video()
    client.create_job(input_video=video_id, ml_models=[_ml_model_id(client)])

    with pytest.raises(Conflict):
        client.delete_video(video_id)


# Enhanced videos and downloads


def test_restored_videos_are_listed_fetched_and_deleted(emulator, small_pages, make_client):
    client = make_client()
    job_ids = emulator.seed_jobs(3, status=FINISHED)
    output_ids = {emulator.job_payload(job_id)["output_video"]["id"] for job_id in job_ids}

    pages = list(client.iter_restored_video_pages())
    assert {video["id"] for page in pages for video in page} == output_ids
    assert [len(page) for page in pages] == [2, 1]

    some_id = min(output_ids)
    assert client.get_restored_video(some_id)["id"] == some_id
    assert client.delete_restored_video(some_id) is None
    with pytest.raises(NotFound):
        client.delete_restored_video(some_id)


def test_download_streams_a_finished_output_to_a_file(emulator, client):
    (job_id,) = emulator.seed_jobs(1, status=FINISHED)
    output = client.get_job(job_id)["output_video"]
    target = io.BytesIO()

    written = client.download(output["file"], target)

    assert written == len(target.getvalue()) > 0
    if output.get("size"):
        assert written == output["size"]
    assert target.getvalue()[4:8] == b"ftyp"
