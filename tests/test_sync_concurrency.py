"""Concurrent syncs on PostgreSQL, in real OS processes against the test database.

Two ``tensorpix_sync`` runs started together on an empty database used to crash with an
``IntegrityError`` on the job <-> ML model links, and both counted the same rows as
created. Each round starts the processes together on an empty database, on each write
path: PostgreSQL's fast path and the generic ``bulk_create`` one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from django_tensorpix.models import Job, JobEvent, MLModel, RestoredVideo, Video
from tests.strategies import page_of_jobs

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 4


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def _listing() -> list[list[dict[str, Any]]]:
    # Three pages; every job shares the same ML models, so links collide.
    return [page_of_jobs(40, first_id=1000 + 40 * n) for n in range(3)]


class Workers:
    """Worker processes (``tests.sync_worker``) that sync together, round after round."""

    def __init__(
        self, folder: Path, modes: list[str], listing: list[list[dict]], rounds: int, path: str
    ):
        self.folder = folder
        listing_file = folder / "listing.json"
        listing_file.write_text(json.dumps(listing))
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "PYTHONPATH": str(ROOT),
            "SYNC_FAST_PATH": "1" if path == "fast" else "0",
        }
        arguments = [str(listing_file), str(folder), str(rounds)]
        self.processes = [
            subprocess.Popen(  # noqa: S603 (our own worker module, our own arguments)
                [sys.executable, "-m", "tests.sync_worker", mode, *arguments],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for mode in modes
        ]
        self._wait_for([f"ready-{p.pid}" for p in self.processes])

    def run_round(self, number: int) -> list[dict[str, Any]]:
        (self.folder / f"start-{number}").touch()
        names = [f"{p.pid}-{number}" for p in self.processes]
        self._wait_for(names)
        return [json.loads((self.folder / name).read_text()) for name in names]

    def _wait_for(self, names: list[str]) -> None:
        deadline = time.monotonic() + 120
        while not all((self.folder / name).exists() for name in names):
            for process in self.processes:
                # A worker exits (0) after its last round, results written.
                assert process.poll() in (None, 0), process.communicate()[1]
            assert time.monotonic() < deadline, "the workers did not answer"
            time.sleep(0.01)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.communicate()


def _empty_the_mirror() -> None:
    for model in (JobEvent, Job.ml_models.through, Job, RestoredVideo, Video, MLModel):
        model._default_manager.all().delete()


def _assert_exact_rows(listing: list[list[dict[str, Any]]]) -> None:
    jobs = [job for page in listing for job in page]
    assert Job.objects.count() == len(jobs)
    assert Video.objects.count() == len({job["input_video"]["id"] for job in jobs})
    outputs = {job["output_video"]["id"] for job in jobs if job["output_video"]}
    assert RestoredVideo.objects.count() == len(outputs)
    models = {model["id"] for job in jobs for model in job["ml_models"]}
    assert MLModel.objects.count() == len(models)
    links = sum(len({model["id"] for model in job["ml_models"]}) for job in jobs)
    assert Job.ml_models.through._default_manager.count() == links
    # One status event per job: the first sync to see it, whichever process it was.
    assert JobEvent.objects.count() == len(jobs)


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_two_syncs_of_one_listing_into_an_empty_database(tmp_path: Path, path: str) -> None:
    listing = _listing()
    workers = Workers(tmp_path, ["listing", "listing"], listing, ROUNDS, path)
    try:
        for number in range(ROUNDS):
            _empty_the_mirror()

            first, second = workers.run_round(number)

            _assert_exact_rows(listing)
            assert first["seen"] == second["seen"] == 120
            assert first["created"] + second["created"] == 120  # honest counts
            assert not Job.objects.filter(missing_remote=True).exists()
    finally:
        workers.stop()


@pytest.mark.parametrize("path", ["fast", "generic"])
def test_a_sync_concurrent_with_polls_of_the_same_jobs(tmp_path: Path, path: str) -> None:
    listing = _listing()
    workers = Workers(tmp_path, ["listing", "jobs"], listing, ROUNDS, path)
    try:
        for number in range(ROUNDS):
            _empty_the_mirror()

            listed, polled = workers.run_round(number)

            _assert_exact_rows(listing)
            assert (listed["seen"], polled["seen"]) == (120, 40)
            assert not Job.objects.filter(missing_remote=True).exists()
    finally:
        workers.stop()
