"""``python -m benchmarks``: finds every bench_*.py, runs each, and fails if one failed."""

from pathlib import Path

import pytest

from benchmarks.__main__ import discover, main


def test_the_repository_benchmarks_are_found() -> None:
    assert "sync" in discover()


def test_runs_every_benchmark_with_its_arguments_and_reports_failures(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bench_alpha.py").write_text("import sys\nprint('alpha figures', sys.argv[1:])\n")
    (tmp_path / "bench_beta.py").write_text("print('beta figures')\nraise SystemExit(3)\n")
    (tmp_path / "helper.py").write_text("raise SystemExit('not a benchmark')\n")

    status = main(["--args", "alpha=--jobs 10"], directory=tmp_path)

    output = capfd.readouterr().out
    assert status == 1
    assert "alpha figures ['--jobs', '10']" in output
    assert "beta figures" in output
    assert "not a benchmark" not in output
    summary = output.split("==== summary")[1]
    assert "alpha" in summary
    assert "FAILED (exit 3)" in summary


def test_an_unknown_benchmark_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bench_alpha.py").write_text("")
    with pytest.raises(SystemExit):
        main(["gamma"], directory=tmp_path)
