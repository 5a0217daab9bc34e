"""``manage.py tensorpix_poll`` against the emulator."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_tensorpix.client import TensorPixClient
from django_tensorpix.enums import JobStatus
from django_tensorpix.models import Job
from django_tensorpix.sync import sync_jobs
from django_tensorpix.testing import PROCESSING

pytestmark = pytest.mark.django_db(transaction=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, stdout: io.StringIO | None = None) -> str:
    out = stdout or io.StringIO()
    call_command("tensorpix_poll", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def import_jobs() -> None:
    with TensorPixClient.for_account() as client:
        sync_jobs(list(client.iter_jobs()))


def test_once_sweeps_and_prints_a_line_per_job(tensorpix_account: Any) -> None:
    ids = tensorpix_account.seed_jobs(2, status=PROCESSING)
    import_jobs()
    tensorpix_account.advance(24 * 3600)

    output = run("--once")

    lines = output.splitlines()
    assert sorted(lines[:2]) == [f"Job {job_id}: Finished" for job_id in ids]
    assert lines[2] == "2 due, 2 refreshed, 0 failed, 1 requests."
    assert "\x1b" not in output
    assert set(Job.objects.values_list("status", flat=True)) == {JobStatus.FINISHED}


def test_live_progress_on_a_terminal(tensorpix_account: Any) -> None:
    (job_id,) = tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs()

    output = run("--once", "--job", str(job_id), stdout=Terminal())

    assert output.startswith(f"\x1b[2KJob {job_id}: Processing [")
    assert "%" in output
    assert "eta" in output


def test_following_a_job_ends_when_it_is_final(tensorpix_account: Any) -> None:
    (job_id,) = tensorpix_account.seed_jobs(1, status=PROCESSING)
    import_jobs()
    tensorpix_account.advance(24 * 3600)

    assert run("--job", str(job_id)) == f"Job {job_id}: Finished\n"


def test_unknown_or_deleted_job_is_an_error(tensorpix_account: Any) -> None:
    with pytest.raises(CommandError, match="No job 5 of account 'default'"):
        run("--job", "5")
    Job.objects.create(tensorpix_id=424_242, status=JobStatus.PROCESSING)
    with pytest.raises(CommandError, match="404"):
        run("--job", "424242")
