"""Every Python example of README.rst runs, against the emulator.

Each ``.. code-block:: python`` is executed on its own, in a fresh namespace holding
``emulator`` (a started emulator that the ``"default"`` account points at, with a manual
clock). What a block defines is then exercised too: each ``test_*`` function is called
with the pytest fixtures its parameters name, and each ``unittest.TestCase`` subclass is
run, so the testing recipes are tested as a reader would use them.

A block that cannot run here (it needs a real TensorPix account, a configured host...)
is preceded by the reStructuredText comment ``.. skip-test: <why>``, which readers never
see. Use it sparingly: an example that does not run is an example that rots.
"""

from __future__ import annotations

import inspect
import io
import re
import textwrap
import unittest
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from django_tensorpix.testing import TensorPixEmulator

README = Path(__file__).resolve().parent.parent / "README.rst"
DIRECTIVE = re.compile(r"^\.\. code-block:: python\s*$")
SKIP = re.compile(r"^\.\. skip-test:\s*(?P<reason>\S.*)$")


@dataclass(frozen=True)
class Example:
    line: int
    code: str
    skip_reason: str | None


def readme_examples(text: str) -> list[Example]:
    """The Python code blocks of ``text``, with the ``skip-test`` reason before each, if any."""
    lines = text.splitlines()
    examples = []
    for index, line in enumerate(lines):
        if not DIRECTIVE.match(line):
            continue
        previous = [earlier for earlier in lines[:index] if earlier.strip()]
        skip = SKIP.match(previous[-1]) if previous else None
        body = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith((" ", "\t")):
                break
            body.append(following)
        code = textwrap.dedent("\n".join(body)).strip("\n")
        examples.append(Example(index + 1, code, skip["reason"] if skip else None))
    return examples


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))


def test_the_readme_has_examples_and_the_parser_finds_skips() -> None:
    assert len(EXAMPLES) >= 5
    sample = "Text\n\n.. skip-test: needs a real account\n\n.. code-block:: python\n\n    x = 1\n"
    (example,) = readme_examples(sample)
    assert example.code == "x = 1"
    assert example.skip_reason == "needs a real account"


@pytest.mark.django_db
@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README.rst:{e.line}" for e in EXAMPLES])
def test_readme_example_runs(
    example: Example, tensorpix_account: TensorPixEmulator, request: pytest.FixtureRequest
) -> None:
    if example.skip_reason:
        pytest.skip(example.skip_reason)
    namespace: dict[str, Any] = {"__name__": "readme_example", "emulator": tensorpix_account}
    exec(compile(example.code, f"README.rst:{example.line}", "exec"), namespace)  # noqa: S102

    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            parameters = inspect.signature(value).parameters
            value(**{parameter: request.getfixturevalue(parameter) for parameter in parameters})
        elif (
            inspect.isclass(value)
            and issubclass(value, unittest.TestCase)
            and value.__module__ == "readme_example"
        ):
            suite = unittest.defaultTestLoader.loadTestsFromTestCase(value)
            result = unittest.TestResult()
            suite.run(result)
            problems = [text for _, text in result.failures + result.errors]
            assert result.testsRun > 0
            assert not problems, "\n".join(problems)


def documented_settings(text: str) -> set[str]:
    """Keys named at the start of a definition-list term (````KEY```` ...) in the README."""
    terms = [line for line in text.splitlines() if line.startswith("``")]
    return {key for line in terms for key in re.findall(r"``([A-Z][A-Z0-9_]+)``", line)}


def test_every_setting_is_documented_and_every_documented_setting_exists() -> None:
    from django_tensorpix.conf import DEFAULTS

    text = README.read_text(encoding="utf-8")
    settings_section = text.split("\nSettings\n========\n", 1)[1].split("\n=====", 1)[0]
    settings_section = settings_section.rsplit("\n", 1)[0]  # the next section's title

    assert set(DEFAULTS) - documented_settings(text) == set()
    assert documented_settings(settings_section) - set(DEFAULTS) == set()


@pytest.mark.parametrize("name", ["README.rst", "CHANGELOG.rst", "benchmarks/README.rst"])
def test_the_document_is_valid_restructured_text(name: str) -> None:
    """PyPI renders the README as its long description: a warning there breaks the page."""
    import docutils.core

    text = (README.parent / name).read_text(encoding="utf-8")
    warnings = io.StringIO()
    docutils.core.publish_doctree(
        text, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings}
    )
    assert warnings.getvalue() == ""
