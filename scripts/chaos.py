#!/usr/bin/env python
"""The long chaos run: tests/test_chaos.py with 300 jobs (or ``--jobs N``), figures printed.

Needs PostgreSQL (``--database``, default postgres://postgres@127.0.0.1:5432/test; pytest
creates and drops ``test_<name>``) and ``redis-server`` on PATH (the run starts its own).

    .venv/bin/python scripts/chaos.py --jobs 300 --database postgres://postgres@127.0.0.1:5432/h14

Prints, for the fault-free run and the chaos run: jobs (created through the REST API by
several users), API requests (per route, status and fault struck), faults injected by
kind, create requests, duplicate dispatches (with their event ids), jobs lost, seconds,
and the ratio of requests between the two runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    env = {**os.environ, "TENSORPIX_CHAOS_JOBS": str(args.jobs), "DATABASE_URL": args.database}
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
               "tests/test_chaos.py"]  # fmt: skip
    return subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - our own interpreter


if __name__ == "__main__":
    sys.exit(main())
