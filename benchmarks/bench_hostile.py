"""Memory and time of the client against hostile answers (a script, not a test).

    .venv/bin/python benchmarks/bench_hostile.py

Serves each answer from a loopback server and prints the client's peak Python memory
(tracemalloc) and wall time while reading it, with ratios against a baseline measured in
the same run (a normal 100-job page of about 300 KB):

* a 50 MB body and a ~200 KB gzip body that unpacks to 200 MB: both must stop at
  ``MAX_RESPONSE_BYTES`` (32 MiB by default), so the peak stays near the cap, not at
  several times the body;
* a body dripping a byte every 50 ms with ``RESPONSE_TIMEOUT`` = 1 s: must end in ~1 s.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.test import override_settings  # noqa: E402

from django_tensorpix.client import TensorPixClient  # noqa: E402
from django_tensorpix.conf import Account  # noqa: E402
from django_tensorpix.exceptions import TensorPixError  # noqa: E402
from tests.strategies import page_of_jobs  # noqa: E402

ANSWERS: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}


def fixed(body: bytes, encoding: str | None = None) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if encoding:
            handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client hung up at its cap
            handler.wfile.write(body)

    return answer


def drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        for _ in range(100_000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ANSWERS[self.path](self)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def measure(client: TensorPixClient, path: str) -> tuple[float, float, str]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        client._get_object(path)
        outcome = "read"
    except TensorPixError as error:
        outcome = type(error).__name__
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, elapsed, outcome


def main() -> None:
    page = {"count": 100, "next": None, "results": page_of_jobs(100)}
    ANSWERS["/baseline/"] = fixed(json.dumps(page).encode())
    ANSWERS["/big/"] = fixed(b'{"x": "' + b"a" * 50_000_000 + b'"}')
    ANSWERS["/bomb/"] = fixed(gzip.compress(b'{"x": "' + b"a" * 200_000_000 + b'"}'), "gzip")
    ANSWERS["/drip/"] = drip
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    account = Account("default", "bench-key", f"http://127.0.0.1:{server.server_port}")
    settings = {"RESPONSE_TIMEOUT": 1.0, "READ_TIMEOUT": 5.0}
    with override_settings(TENSORPIX=settings), TensorPixClient(account, max_retries=0) as client:
        base_mib, base_s, _ = measure(client, "/baseline/")
        print(f"{'answer':<34} {'outcome':<18} {'peak MiB':>9} {'x base':>7} {'seconds':>8}")
        print(
            f"{'baseline: 100-job page':<34} {'read':<18} {base_mib:>9.1f} {1:>7.1f} {base_s:>8.2f}"
        )
        for label, path in [
            ("50 MB body", "/big/"),
            ("gzip bomb (200 MB unpacked)", "/bomb/"),
            ("drip, RESPONSE_TIMEOUT 1 s", "/drip/"),
        ]:
            mib, seconds, outcome = measure(client, path)
            ratio = mib / base_mib
            print(f"{label:<34} {outcome:<18} {mib:>9.1f} {ratio:>7.1f} {seconds:>8.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
