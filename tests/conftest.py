"""Fixtures shared by the test modules.

``tensorpix_server`` and ``tensorpix_account`` come from django-tensorpix's own pytest
plugin (registered by the package's ``pytest11`` entry point), as in a user's project.
"""

from collections.abc import Iterator

import pytest
import requests

from django_tensorpix.testing import TensorPixEmulator


@pytest.fixture
def emulator(tensorpix_server: TensorPixEmulator) -> TensorPixEmulator:
    return tensorpix_server


@pytest.fixture
def http(emulator: TensorPixEmulator) -> Iterator[requests.Session]:
    """A plain ``requests`` session that sends the emulator's key, to talk to it raw."""
    session = requests.Session()
    session.headers["Authorization"] = f"Token {emulator.api_key}"
    yield session
    session.close()
