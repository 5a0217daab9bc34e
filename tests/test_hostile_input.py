"""Hostile input: whatever a caller or TensorPix sends, a clear error and nothing changed.

The services are called with wrong types, out-of-range and unknown options, unknown AI
filters, huge strings and URLs that are not http(s); each call must raise a
``ValidationError`` naming the field, write no row and send nothing to TensorPix (the
emulator's request log is checked). The sync gets whole pages mixing valid and broken
jobs: the valid ones land, the broken ones are reported, and none leaves a partial row.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from django_tensorpix import services
from django_tensorpix.client import TensorPixClient
from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from django_tensorpix.sync import sync_jobs, sync_ml_models
from django_tensorpix.testing import TensorPixEmulator
from tests.strategies import MixedPage, mixed_job_pages
from tests.test_sync_roundtrip import assert_page_reads_back

pytestmark = pytest.mark.django_db

URL = "https://media.example.com/clips/holiday_720p.mp4"
UPSCALE_2X = 1  # "200% AI Upscale" in the emulator's catalogue
HUGE = "x" * 5_000_000


@pytest.fixture
def emulator(tensorpix_account: TensorPixEmulator, tmp_path: Any, settings: Any) -> Any:
    """The emulator as the default account, its catalogue synced, its request log empty."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    with TensorPixClient.for_account() as client:
        for page in client.iter_ml_model_pages():
            sync_ml_models(page)
    tensorpix_account.clear_requests()
    return tensorpix_account


def assert_nothing_changed(emulator: TensorPixEmulator) -> None:
    assert not Job.objects.exists()
    assert not Video.objects.exists()
    assert not JobEvent.objects.exists()
    writes = [r for r in emulator.requests if r.method != "GET"]
    assert writes == []
    assert not emulator.state.jobs


@pytest.mark.parametrize(
    "video_url",
    [
        "file:///etc/passwd",
        "javascript:alert(document.cookie)",
        "JaVaScRiPt:alert(1)//https://media.example.com/a.mp4",
        "data:video/mp4;base64,AAAAIGZ0eXBpc29t",
        "ftp://media.example.com/a.mp4",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "//media.example.com/a.mp4",
        "https://",
        "https://media.example.com/a b.mp4\nHost: evil",
        "https://" + HUGE,
        "",
        "   ",
        12345,
        None,
        b"https://media.example.com/a.mp4",
        ["https://media.example.com/a.mp4"],
        {"url": "https://media.example.com/a.mp4"},
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_video_url_that_is_not_a_plain_http_url_is_refused(emulator, video_url):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url(video_url, [UPSCALE_2X])

    assert list(caught.value.message_dict) == ["video_url"]
    assert emulator.requests == []
    assert_nothing_changed(emulator)


@pytest.mark.parametrize(
    "options",
    [
        {"crf": "23"},
        {"crf": 2**64},
        {"crf": True},
        {"grain": float("nan")},
        {"grain": float("inf")},
        {"target_fps": "60"},
        {"playback_speed": [0.5]},
        {"codec": HUGE},
        {"codec": ["libx264"]},
        {"container": {"mp4": True}},
        {"output_resolution": "1920"},
        {"start_frame": 2**31},
        {"end_frame": -(2**63)},
        {"preview": "true"},
        {"chroma_subsampling": "\x00"},
        {"api_key": "steal-me"},
        {"status": 2},
        {"tensorpix_id": 1},
    ],
    ids=lambda value: repr(value)[:40],
)
def test_wrong_types_and_unknown_options_are_refused_by_field(emulator, options):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url(URL, [UPSCALE_2X], **options)

    assert list(caught.value.message_dict) == list(options)
    assert emulator.requests == []
    assert_nothing_changed(emulator)


@pytest.mark.parametrize(
    "ml_models",
    [
        [999_999],
        [-1],
        [2**70],
        [1.0],
        [True],
        [None],
        [{"id": 1}],
        [[1]],
        [HUGE],
        ["\x00"],
        [],
        None,
        7,
        "Super Resolution",
    ],
    ids=lambda value: repr(value)[:40],
)
def test_unknown_or_malformed_ml_models_are_refused(emulator, ml_models):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url(URL, ml_models)

    assert list(caught.value.message_dict) == ["ml_models"]
    # An unknown name may refresh the catalogue (a GET), never anything else.
    assert {r.route for r in emulator.requests} <= {"GET /api/ml-models/"}
    assert_nothing_changed(emulator)


def test_every_bad_field_is_reported_at_once(emulator):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url("javascript:alert(1)", [999_999], crf=99, codec=HUGE)

    assert set(caught.value.message_dict) == {"video_url", "ml_models", "crf", "codec"}
    assert_nothing_changed(emulator)


def test_messages_do_not_echo_huge_values(emulator):
    with pytest.raises(ValidationError) as caught:
        services.enhance_from_url("https://" + HUGE, [HUGE], codec=HUGE)

    assert len(str(caught.value.message_dict)) < 20_000


@pytest.mark.parametrize(
    "source",
    [12345, None, b"/etc/passwd", "../outside.mp4", "", "\x00", HUGE],
    ids=lambda value: repr(value)[:40],
)
def test_enhance_file_refuses_what_is_not_a_file_or_a_stored_name(emulator, source):
    with pytest.raises(ValidationError) as caught:
        services.enhance_file(source, [UPSCALE_2X])

    assert "source" in caught.value.message_dict
    assert_nothing_changed(emulator)


def test_unknown_account_is_refused_before_anything(emulator):
    with pytest.raises(Exception, match="No TensorPix account named 'nope'"):
        services.enhance_from_url(URL, [UPSCALE_2X], account="nope")

    assert_nothing_changed(emulator)


# -- TensorPix's pages: valid jobs land, broken ones are reported, nothing partial ----------


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(page=mixed_job_pages())
def test_a_page_mixing_valid_and_broken_jobs_lands_the_valid_ones_only(page: MixedPage) -> None:
    valid = [job for seed, job in enumerate(page.jobs, 1) if seed in page.valid]

    with transaction.atomic():
        result = sync_jobs(page.jobs, skip_malformed=True)

        assert sorted(s.field for s in result.skipped) == sorted(page.broken.values())
        for skipped in result.skipped:
            if skipped.field != "id":
                assert page.broken[skipped.tensorpix_id] == skipped.field  # type: ignore[index]
        assert result.created == len(valid)
        assert_page_reads_back(valid)
        assert Job.objects.count() == len(valid)
        for seed in page.broken:
            # No row of a broken job, nor of anything nested in it, was written.
            assert not Job.objects.filter(tensorpix_id=seed).exists()
            assert not Video.objects.filter(tensorpix_id=seed + 1_000_000).exists()
            assert not RestoredVideo.objects.filter(tensorpix_id=seed + 2_000_000).exists()
            assert not MLModel.objects.filter(
                tensorpix_id__range=(seed * 10 + 3_000_000, seed * 10 + 3_000_009)
            ).exists()
        transaction.set_rollback(True)


def test_the_mixed_pages_strategy_draws_both_kinds() -> None:
    """Guard against a strategy that silently stops producing broken (or valid) jobs."""
    kinds: set[str] = set()

    @settings(max_examples=30, deadline=None)
    @given(page=mixed_job_pages())
    def collect(page: MixedPage) -> None:
        kinds.update(["valid"] * bool(page.valid) + ["broken"] * bool(page.broken))

    collect()
    assert kinds == {"broken", "valid"}
