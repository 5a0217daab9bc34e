"""Run the emulator from a shell, for demos and manual testing::

    python -m django_tensorpix.testing --port 8765 --api-key demo --speed 20

Serves until interrupted (Ctrl-C or SIGTERM). The key is never printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal
from types import FrameType

from .emulator import TensorPixEmulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_tensorpix.testing",
        description="A TensorPix API emulator on loopback, with an AI filter catalogue.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--api-key", default="demo", help="the key clients must send")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (20 makes a 10-minute job take 30 s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice")
    parser.add_argument("--seed-jobs", type=int, default=0, help="jobs to create at start")
    parser.add_argument("--max-active-jobs", type=int, default=4)
    parser.add_argument("--balance", type=Decimal, default=Decimal("1000.0000"))
    parser.add_argument(
        "--failure-rate", type=float, default=0.0, help="chance that a new job fails"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    emulator = TensorPixEmulator(
        options.api_key,
        host=options.host,
        port=options.port,
        seed=options.seed,
        speed=options.speed,
    )
    emulator.max_active_jobs = options.max_active_jobs
    emulator.balance = options.balance
    emulator.failure_rate = options.failure_rate
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with emulator:
        if options.seed_jobs:
            emulator.seed_jobs(options.seed_jobs)
        print(
            f"TensorPix emulator listening on {emulator.base_url} "
            f"(clock x{options.speed:g}, {options.seed_jobs} seeded jobs). Ctrl-C stops it.",
            flush=True,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
