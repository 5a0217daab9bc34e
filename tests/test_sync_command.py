"""``manage.py tensorpix_sync`` against the emulator."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_tensorpix.management.commands.tensorpix_sync import progress_bar
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, stdout: io.StringIO | None = None) -> str:
    out = stdout or io.StringIO()
    call_command("tensorpix_sync", *args, stdout=out)
    return out.getvalue()


def test_syncs_every_kind_and_prints_counts(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(5)

    output = run()

    assert Job.objects.count() == 5
    assert MLModel.objects.exists()
    assert RestoredVideo.objects.exists()
    assert Video.objects.exists()
    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "ml-models",
        "videos",
        "restored-videos",
        "jobs",
    ]
    assert "jobs: 5 created, 0 changed, 0 unchanged, 0 newly missing" in lines


def test_a_second_run_finds_nothing_changed(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(3, status=2)
    run("jobs")

    output = run("jobs")

    assert output == "jobs: 0 created, 0 changed, 3 unchanged, 0 newly missing\n"


def test_only_the_named_kinds_are_synced(tensorpix_account: Any) -> None:
    tensorpix_account.seed_jobs(2)

    run("ml-models")

    assert MLModel.objects.exists()
    assert not Job.objects.exists()
    assert {r.path for r in tensorpix_account.requests} == {"/api/ml-models/"}


def test_jobs_are_streamed_page_by_page(tensorpix_account: Any, settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 100}
    tensorpix_account.seed_jobs(250)

    run("jobs")

    assert Job.objects.count() == 250
    pages = [r for r in tensorpix_account.requests if r.path == "/api/jobs/"]
    assert len(pages) == 3


def test_progress_bar_is_shown_on_a_terminal_only(tensorpix_account: Any, settings: Any) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "PAGE_SIZE": 2}
    tensorpix_account.seed_jobs(4)

    terminal = run("jobs", stdout=Terminal())
    piped = run("jobs")

    assert f"\rjobs: [{'#' * 15}{'-' * 15}] 2 / 4" in terminal
    assert f"\rjobs: [{'#' * 30}] 4 / 4" in terminal
    assert "\r" not in piped


def test_progress_without_a_total_counts_what_was_synced() -> None:
    assert progress_bar(1200, None) == "1,200 synced…"
    assert progress_bar(7, 0) == "7 synced…"
    assert progress_bar(12, 10, width=10) == "[##########] 12 / 10"


def test_a_wrong_key_exits_with_a_clear_message_without_the_key(
    tensorpix_account: Any, settings: Any
) -> None:
    settings.TENSORPIX = {**settings.TENSORPIX, "API_KEY": "sk-wrong-and-secret"}

    with pytest.raises(CommandError, match="refused the API key of account 'default'") as error:
        run()

    assert "sk-wrong-and-secret" not in str(error.value)
    assert not Job.objects.exists()


def test_unreachable_tensorpix_exits_with_a_clear_message(settings: Any) -> None:
    settings.TENSORPIX = {
        **settings.TENSORPIX,
        "API_KEY": "sk-unreachable-secret",
        "BASE_URL": "http://127.0.0.1:9",
        "MAX_RETRIES": 1,
    }

    with pytest.raises(CommandError, match="could not be reached") as error:
        run("ml-models")

    assert "sk-unreachable-secret" not in str(error.value)


def test_an_unknown_account_is_refused() -> None:
    with pytest.raises(CommandError, match="No TensorPix account named 'nope'"):
        run("--account", "nope")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        run("images")
