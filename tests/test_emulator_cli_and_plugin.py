"""The emulator as users start it: the CLI, the pytest fixtures, the context manager."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings as django_settings

from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.testing import TensorPixEmulator

ROOT = Path(__file__).resolve().parent.parent


def read_ready_line(process: subprocess.Popen, timeout: float = 15.0) -> str:
    """The CLI's "listening on <url>" line. It is printed once the seeded jobs exist: a
    request sent as soon as the port accepts connections may find fewer."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = process.stdout.readline()
                if "listening on" in line:
                    return line
                assert line, process.stderr.read() if process.stderr else "the CLI exited"
    raise AssertionError("the emulator CLI did not say it was listening")


def test_cli_serves_jobs_to_the_right_key_only():
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_tensorpix.testing",
            "--port",
            "0",
            "--api-key",
            "demo",
            "--speed",
            "20",
            "--seed-jobs",
            "5",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = read_ready_line(process)
        base_url = re.search(r"http://127\.0\.0\.1:[0-9]+", ready)
        assert base_url, ready
        url = f"{base_url.group()}/api/jobs/"

        authorized = requests.get(url, headers={"Authorization": "Token demo"}, timeout=5)
        anonymous = requests.get(url, timeout=5)
        wrong_key = requests.get(url, headers={"Authorization": "Token nope"}, timeout=5)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert authorized.status_code == 200
    assert authorized.json()["count"] == 5
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    assert wrong_key.status_code == 401
    assert process.returncode == 0
    assert "demo" not in ready + output


def test_cli_refuses_a_non_positive_speed():
    result = subprocess.run(
        [sys.executable, "-m", "django_tensorpix.testing", "--speed", "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert "--speed" in result.stderr


def test_tensorpix_server_fixture_is_running_with_a_manual_clock(tensorpix_server):
    before = tensorpix_server.now()
    response = requests.get(
        f"{tensorpix_server.base_url}/api/accounts/profile/balance/",
        headers={"Authorization": "Token test-key"},
    )

    assert response.status_code == 200
    assert tensorpix_server.api_key == "test-key"
    assert tensorpix_server.now() == before


def test_tensorpix_account_points_the_default_account_at_the_server(tensorpix_account):
    account = tensorpix_settings.get_account()

    assert account.base_url == tensorpix_account.base_url
    assert account.api_key == tensorpix_account.api_key
    assert django_settings.TENSORPIX["RETRY_BACKOFF_BASE"] == 0.01


def test_context_manager_starts_and_stops_the_server():
    with TensorPixEmulator(api_key="k") as emulator:
        url = f"{emulator.base_url}/api/jobs/"
        assert requests.get(url, headers={"Authorization": "Token k"}).status_code == 200

    try:
        requests.get(url, timeout=1)
    except requests.ConnectionError:
        stopped = True
    else:
        stopped = False
    assert stopped
    assert "stopped" in repr(emulator)
