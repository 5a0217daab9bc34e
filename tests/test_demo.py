"""The demo (``scripts/demo.sh``, the README's first command), run headless end to end.

Real processes throughout: the emulator, a Celery worker with beat, the example project's
commands on their own SQLite file. The demo's database does not depend on the suite's
``DATABASE_URL``, so these run once, on the SQLite pass of ``scripts/test.sh``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "scripts" / "demo.py"
EXPECTED = {
    "Wedding film: 2x upscale + denoise, archived": "archived",
    "Holiday clip (uploaded): face enhance": "finished",
    "VHS tape: prettify + deinterlace, first 600 frames": "finished",
    "Damaged reel: denoise (fails on purpose)": "failed",
    "Drone shot: stabilization, canceled": "canceled",
}
STATUS = {"finished": 2, "archived": 2, "failed": -1, "canceled": -2}

on_sqlite_pass_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "sqlite").startswith("postgres"),
    reason="the demo runs on its own SQLite file: once, on the SQLite pass, is enough",
)


def run_demo(workdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(DEMO), "--no-server", "--until-done"]
    command += ["--speed", "300", "--timeout", "240", "--workdir", str(workdir)]
    return subprocess.run(  # noqa: S603
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )


def assert_every_job_ended_as_expected(workdir: Path) -> None:
    summary = json.loads((workdir / "summary.json").read_text())
    assert {item["label"]: item["state"] for item in summary} == EXPECTED
    # The database itself, read independently of the demo's own report.
    with sqlite3.connect(workdir / "db.sqlite3") as database:
        rows = dict(
            database.execute("SELECT tensorpix_id, status FROM django_tensorpix_job").fetchall()
        )
        archived = dict(
            database.execute(
                "SELECT tensorpix_id, archived_file FROM django_tensorpix_job"
                " WHERE archived_file != ''"
            ).fetchall()
        )
    for item in summary:
        assert rows[item["tensorpix_id"]] == STATUS[item["expected"]], item
        assert (item["tensorpix_id"] in archived) == (item["expected"] == "archived"), item
    (archived_file,) = archived.values()
    assert (workdir / "media" / archived_file).stat().st_size >= 100
    # The worker polled the jobs: its job_finished receiver e-mailed the owner of each
    # finished job (the console backend prints to the worker's log).
    mailed = re.findall(
        r"Subject: Your enhanced video is ready \(job (\d+)\)", (workdir / "celery.log").read_text()
    )
    finished = {item["tensorpix_id"] for item in summary if STATUS[item["expected"]] == 2}
    assert {int(job_id) for job_id in mailed} == finished


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the running processes that mention ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command_line:
            found.append(command_line)
    return found


@on_sqlite_pass_only
def test_headless_demo_brings_every_job_to_its_expected_state(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"

    result = run_demo(workdir, CELERY_BROKER_URL="redis://127.0.0.1:6379/13")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 5 demo jobs ended as expected." in result.stdout
    assert [line for line in result.stdout.splitlines() if line.startswith("Broker: ")]
    assert_every_job_ended_as_expected(workdir)
    # Everything the demo started (worker, beat, emulator) is gone with it.
    assert processes_mentioning(str(workdir)) == []


@on_sqlite_pass_only
def test_without_redis_the_demo_completes_on_the_embedded_broker(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    with_nothing = tmp_path / "bin"
    with_nothing.mkdir()

    # A broker URL nobody answers, and a PATH without redis-server.
    result = run_demo(workdir, CELERY_BROKER_URL="redis://127.0.0.1:9/0", PATH=str(with_nothing))

    assert result.returncode == 0, result.stdout + result.stderr
    (broker_line,) = [line for line in result.stdout.splitlines() if line.startswith("Broker: ")]
    assert "redis-server is not installed" in broker_line
    assert "embedded" in broker_line
    assert_every_job_ended_as_expected(workdir)
    assert processes_mentioning(str(workdir)) == []


def load_demo_module() -> Any:
    spec = importlib.util.spec_from_file_location("demo_script", DEMO)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_without_a_reachable_redis_the_demo_starts_its_own_and_stops_it(tmp_path: Path) -> None:
    demo = load_demo_module()
    processes = demo.Processes()
    said: list[str] = []
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:9/0"}
    try:
        demo.choose_broker(env, processes, tmp_path, said.append)
        private = env["CELERY_BROKER_URL"]
        assert private != "redis://127.0.0.1:9/0"
        assert demo.redis_answers(private)
        assert said == [
            f"Broker: redis://127.0.0.1:9/0 did not answer; a private redis-server on {private}."
        ]
    finally:
        processes.stop_all()
    assert not demo.redis_answers(private)
