"""Run every benchmark in one go and print their figures::

    python -m benchmarks                       # every benchmarks/bench_*.py, in name order
    python -m benchmarks sync poll             # only bench_sync.py and bench_poll.py
    python -m benchmarks --args sync="--jobs 1000 --stream 3000 --checkpoints 1000,3000"

Each ``bench_<name>.py`` is a script that prints its own figures (with the baseline it
measured in the same run, and the ratio); this runner knows nothing about them beyond
their file names. Each runs in its own Python process, one after the other (so one's
memory and database state cannot colour the next), with this interpreter, from the
repository root, its output passed through as it comes. ``DATABASE_URL`` defaults to the
local PostgreSQL's ``bench`` database (the benchmarks create and drop ``test_bench``).

Exits non-zero if any benchmark failed, after running the rest; the summary at the end
says which, with each one's wall time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"


def discover(directory: Path = HERE) -> dict[str, Path]:
    """``{"sync": benchmarks/bench_sync.py, ...}``, sorted by name."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(directory.glob("bench_*.py"))}


def parse_script_args(pairs: Sequence[str], known: dict[str, Path]) -> dict[str, list[str]]:
    """``["sync=--jobs 10"]`` -> ``{"sync": ["--jobs", "10"]}``, rejecting unknown names."""
    parsed: dict[str, list[str]] = {}
    for pair in pairs:
        name, separator, arguments = pair.partition("=")
        if not separator or name not in known:
            raise SystemExit(f"--args wants NAME=ARGUMENTS with NAME among {', '.join(known)}")
        parsed[name] = shlex.split(arguments)
    return parsed


def main(argv: Sequence[str] | None = None, directory: Path = HERE) -> int:
    """Run the benchmarks of ``directory`` named in ``argv`` (all by default)."""
    known = discover(directory)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run every benchmark and print its figures."
    )
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (of: {', '.join(known)})")
    parser.add_argument(
        "--args",
        action="append",
        default=[],
        metavar="NAME=ARGUMENTS",
        help="extra command-line arguments for one benchmark (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    options = parser.parse_args(argv)
    if options.list:
        for name, path in known.items():
            print(f"{name:<16} {path}")
        return 0
    unknown = [name for name in options.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    script_args = parse_script_args(options.args, known)
    selected = options.names or list(known)

    environment = dict(os.environ)
    environment.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    environment["PYTHONUNBUFFERED"] = "1"
    outcomes: list[tuple[str, int, float]] = []
    for name in selected:
        command = [sys.executable, str(known[name]), *script_args.get(name, [])]
        print(f"\n==== {name}: python {shlex.join([known[name].name, *command[2:]])}", flush=True)
        started = time.monotonic()
        returncode = subprocess.call(command, cwd=ROOT, env=environment)  # noqa: S603
        outcomes.append((name, returncode, time.monotonic() - started))

    print("\n==== summary")
    for name, returncode, seconds in outcomes:
        verdict = "ok" if returncode == 0 else f"FAILED (exit {returncode})"
        print(f"{name:<16} {verdict:<20} {seconds:8.1f} s")
    return 0 if all(returncode == 0 for _, returncode, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
