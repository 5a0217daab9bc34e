"""The demo: the example project at work against the TensorPix emulator.

Run through ``scripts/demo.sh`` (which makes the virtualenv first)::

    scripts/demo.sh                          # everything, until Ctrl-C
    scripts/demo.sh --no-server --until-done # headless: exit once every job has ended

In order: a fresh SQLite database in the demo's folder (``--workdir``, default
``example_project/.demo/``), migrated; an admin user with a new password (printed); the
emulator with its AI filter catalogue and a running clock (``--speed`` simulated seconds
per second); a Celery broker (see :func:`choose_broker`); a Celery worker with beat; the
development server; then ``manage.py tensorpix_demo`` submits the jobs and shows their
progress. Every process is started in its own session and logs to the demo folder; on
exit, Ctrl-C or SIGTERM the demo stops those processes (their whole process groups) and
nothing else.

The database is recreated on each run because the emulator starts empty each time: its
job ids begin again, and a database holding the last run's jobs would mistake the new
jobs for old ones.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_project"
PYTHON = sys.executable
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
API_KEY = "demo-key"
ADMIN_USER = "admin"


class DemoError(Exception):
    """Something the demo needs did not come up; the message says what and where to look."""


def free_port(preferred: int = 0) -> int:
    """``preferred`` if nothing listens there, else a port the system picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise DemoError("no free TCP port on 127.0.0.1")


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis answers PING at ``url`` within ``timeout`` seconds."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def wait_for(what: str, ready: Callable[[], bool], timeout: float, log: Path | None) -> None:
    """Poll ``ready`` until true; after ``timeout`` seconds raise, quoting ``log``'s tail."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                tail = f"\nLast lines of {log}:\n{tail}"
            raise DemoError(f"{what} did not come up within {timeout:.0f} s.{tail}")
        time.sleep(0.2)


class Processes:
    """The processes the demo started, each the leader of its own process group."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self, name: str, command: Sequence[str], log: Path, env: dict[str, str], cwd: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(  # noqa: S603
                list(command),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((name, process))
        return process

    def check_alive(self) -> None:
        for name, process in self.started:
            if process.poll() is not None:
                raise DemoError(f"{name} exited unexpectedly (status {process.returncode}).")

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM each group we started (newest first), then SIGKILL what is left."""
        for _, process in reversed(self.started):
            self._signal(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in reversed(self.started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
            # Children of the leader (the worker's pool, beat) live in the same group.
            self._signal(process, signal.SIGKILL)
            process.wait()
        self.started.clear()

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)


def choose_broker(
    env: dict[str, str], processes: Processes, workdir: Path, say: Callable[[str], None]
) -> None:
    """Set ``CELERY_BROKER_URL`` in ``env``: the configured Redis, a private one, or files.

    The Redis at ``CELERY_BROKER_URL`` (default the local one) when it answers; otherwise
    a private ``redis-server`` on a free port when one is on ``PATH``; otherwise kombu's
    filesystem transport, which needs no server. Says which in one line.
    """
    url = env.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL
    if url.startswith("filesystem://"):
        env["CELERY_BROKER_FOLDER"] = str(workdir / "broker")
        (workdir / "broker").mkdir(exist_ok=True)
        say(f"Broker: embedded (kombu filesystem transport in {workdir / 'broker'}).")
        return
    if redis_answers(url):
        env["CELERY_BROKER_URL"] = url
        say(f"Broker: the Redis at {without_password(url)}.")
        return
    server = shutil.which("redis-server", path=env.get("PATH"))
    if server is not None:
        port = free_port()
        log = workdir / "redis.log"
        options = shlex.split('--bind 127.0.0.1 --save "" --appendonly no')
        command = [server, *options, "--port", str(port), "--dir", str(workdir)]
        processes.start("redis-server", command, log, env, workdir)
        private = f"redis://127.0.0.1:{port}/0"
        wait_for("redis-server", lambda: redis_answers(private, 0.5), 15, log)
        env["CELERY_BROKER_URL"] = private
        say(f"Broker: {without_password(url)} did not answer; a private redis-server on {private}.")
        return
    folder = workdir / "broker"
    folder.mkdir(exist_ok=True)
    env["CELERY_BROKER_URL"] = "filesystem://"
    env["CELERY_BROKER_FOLDER"] = str(folder)
    say(
        f"Broker: {without_password(url)} did not answer and redis-server is not installed; "
        f"embedded (kombu filesystem transport in {folder}), no server needed."
    )


def log_contains(log: Path, text: str) -> Callable[[], bool]:
    return lambda: log.exists() and text in log.read_text(errors="replace")


def http_answers(url: str) -> Callable[[], bool]:
    import requests

    def ready() -> bool:
        try:
            requests.get(url, timeout=1)
        except requests.RequestException:
            return False
        return True

    return ready


MARKER = ".tensorpix-demo"


def prepare_workdir(workdir: Path) -> Path:
    """Empty the demo's folder (only one the demo made: it holds ``MARKER``) or create it."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / MARKER).exists():
            raise DemoError(
                f"{workdir} is not empty and was not made by the demo: not touching it."
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).touch()
    return workdir


def run(options: argparse.Namespace, processes: Processes, out: IO[str]) -> int:
    def say(line: str) -> None:
        print(line, file=out, flush=True)

    workdir = prepare_workdir(options.workdir.resolve())
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DJANGO_MEDIA_ROOT=str(workdir / "media"),
        TENSORPIX_API_KEY=API_KEY,
        EXAMPLE_FAST_POLLING="1",
        CELERY_TASK_DEFAULT_QUEUE=f"tensorpix-demo-{secrets.token_hex(4)}",
        PYTHONUNBUFFERED="1",
    )
    manage = [PYTHON, str(PROJECT / "manage.py")]

    def manage_run(*arguments: str) -> None:
        subprocess.run([*manage, *arguments], env=env, cwd=PROJECT, check=True)  # noqa: S603

    say(f"Demo folder: {workdir} (database, logs; recreated on each run)")
    say("Migrating a fresh SQLite database…")
    manage_run("migrate", "--verbosity", "0")
    password = secrets.token_urlsafe(9)
    # The password goes through the environment, so it never shows in a process list.
    subprocess.run(  # noqa: S603
        [
            *manage,
            "createsuperuser",
            "--noinput",
            "--username",
            ADMIN_USER,
            "--email",
            "admin@example.com",
        ],
        env={**env, "DJANGO_SUPERUSER_PASSWORD": password},
        cwd=PROJECT,
        check=True,
    )

    port = free_port(options.emulator_port)
    env["TENSORPIX_BASE_URL"] = f"http://127.0.0.1:{port}"
    emulator_log = workdir / "emulator.log"
    emulator = ["-m", "django_tensorpix.testing", "--api-key", API_KEY, "--port", str(port)]
    emulator += ["--speed", str(options.speed)]
    processes.start("the emulator", [PYTHON, *emulator], emulator_log, env, PROJECT)
    wait_for("The emulator", log_contains(emulator_log, "listening on"), 30, emulator_log)
    say(f"TensorPix emulator: {env['TENSORPIX_BASE_URL']} (clock x{options.speed:g})")

    choose_broker(env, processes, workdir, say)
    worker_log = workdir / "celery.log"
    worker = ["-m", "celery", "-A", "example", "worker", "-B", "--loglevel", "info"]
    worker += ["--concurrency", "2", "--queues", env["CELERY_TASK_DEFAULT_QUEUE"]]
    worker += ["--schedule", str(workdir / "celerybeat-schedule")]
    # Mingle, gossip and heartbeats are broadcasts between workers: there is one here.
    worker += ["--without-mingle", "--without-gossip", "--without-heartbeat"]
    processes.start("the Celery worker", [PYTHON, *worker], worker_log, env, PROJECT)
    say("Waiting for the Celery worker…")
    wait_for("The Celery worker", log_contains(worker_log, " ready."), 90, worker_log)
    say(f"Celery worker with beat: up (log: {worker_log})")

    if options.server:
        server_port = free_port(options.port)
        server_log = workdir / "server.log"
        base = f"http://127.0.0.1:{server_port}"
        processes.start(
            "the development server",
            [*manage, "runserver", "--noreload", f"127.0.0.1:{server_port}"],
            server_log,
            env,
            PROJECT,
        )
        wait_for("The development server", http_answers(f"{base}/admin/"), 60, server_log)
        say("")
        say(f"Admin:    {base}/admin/   user {ADMIN_USER!r}, password {password!r}")
        say(f"REST API: {base}/api/tensorpix/   (OpenAPI docs: {base}/api/docs/)")
        say("")

    summary = workdir / "summary.json"
    status = subprocess.call(  # noqa: S603
        [
            *manage,
            "tensorpix_demo",
            f"--timeout={options.timeout}",
            f"--summary={summary}",
            f"--clock-speed={options.speed}",
        ],
        env=env,
        cwd=PROJECT,
    )
    processes.check_alive()
    if options.until_done or not options.server:
        return status
    say("")
    say(f"The server stays up at {base}/admin/ ; Ctrl-C stops the demo.")
    while True:
        time.sleep(1)
        processes.check_alive()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-server",
        dest="server",
        action="store_false",
        help="do not start the development server",
    )
    parser.add_argument(
        "--until-done",
        action="store_true",
        help="exit once every demo job has ended (status 0 if all as expected)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=30.0,
        help="emulator clock: simulated seconds per real second (30: jobs take a minute or two)",
    )
    parser.add_argument("--port", type=int, default=8000, help="development server port")
    parser.add_argument("--emulator-port", type=int, default=8765)
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds the jobs may take before the demo gives up",
    )
    parser.add_argument("--workdir", type=Path, default=PROJECT / ".demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    processes = Processes()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(options, processes, sys.stdout)
    except KeyboardInterrupt:
        print("\nStopping the demo…", flush=True)
        return 130
    except (DemoError, subprocess.CalledProcessError) as error:
        print(f"Demo failed: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
