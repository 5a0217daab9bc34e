"""The emulator as users start it: the CLI, the pytest fixtures, the context manager."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings as django_settings

from django_tensorpix.conf import tensorpix_settings
from django_tensorpix.testing import TensorPixEmulator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the emulator CLI did not start listening")


def test_cli_serves_jobs_to_the_right_key_only():
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "django_tensorpix.testing",
            "--port",
            str(port),
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
        wait_until_listening(port, process)
        url = f"http://127.0.0.1:{port}/api/jobs/"

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
    assert f"http://127.0.0.1:{port}" in output
    assert "demo" not in output


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
