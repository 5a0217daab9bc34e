"""pytest fixtures for the TensorPix emulator (registered as the ``tensorpix`` plugin).

Importing this module needs neither Django settings nor pytest-django: the plugin is
loaded in every test run of a project that installs django-tensorpix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .emulator import TensorPixEmulator

TEST_API_KEY = "test-key"


@pytest.fixture
def tensorpix_server() -> Iterator[TensorPixEmulator]:
    """A started emulator with a manual clock and the API key ``"test-key"``."""
    with TensorPixEmulator(api_key=TEST_API_KEY) as emulator:
        yield emulator


@pytest.fixture
def tensorpix_account(
    request: pytest.FixtureRequest, tensorpix_server: TensorPixEmulator
) -> TensorPixEmulator:
    """``tensorpix_server``, with ``settings.TENSORPIX`` pointing the default account at it.

    Needs pytest-django's ``settings`` fixture; other ``TENSORPIX`` keys are kept.
    """
    settings: Any = request.getfixturevalue("settings")
    current = dict(getattr(settings, "TENSORPIX", None) or {})
    settings.TENSORPIX = {
        **current,
        "API_KEY": tensorpix_server.api_key,
        "BASE_URL": tensorpix_server.base_url,
    }
    return tensorpix_server
