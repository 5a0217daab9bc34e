"""Fixtures shared by the test modules.

``tensorpix_server`` and ``tensorpix_account`` come from django-tensorpix's own pytest
plugin (registered by the package's ``pytest11`` entry point), as in a user's project.
"""

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.test import APIClient

from django_tensorpix.sync import postgres
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


# -- sync speed (issue 15) --


@pytest.fixture(params=["postgres", "generic"])
def sync_path(
    request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run a sync test on both write paths: PostgreSQL's fast path, and ``bulk_create``.

    The fast path exists only on PostgreSQL, so on another database its run is skipped
    (the generic path is the only one there). Its one-off ANALYZE is kept out of the
    way, so that query counts do not depend on what earlier tests wrote.
    """
    monkeypatch.setattr(postgres, "ANALYZE_AFTER_ROWS", 2**62)
    fast = request.param == "postgres"
    if fast and connection.vendor != "postgresql":
        pytest.skip("the fast path is PostgreSQL's")
    settings.TENSORPIX = {**getattr(settings, "TENSORPIX", {}), "SYNC_FAST_PATH": fast}
    return str(request.param)


# -- REST API (django_tensorpix.api) ---------------------------------------------------


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """A user with the add_job and add_video permissions."""
    user = django_user_model.objects.create_user("alice")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="django_tensorpix", codename__in=["add_job", "add_video"]
        )
    )
    return user


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    """A user without any permission."""
    return django_user_model.objects.create_user("bob")


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("staff", is_staff=True)


@pytest.fixture
def api(alice: Any) -> APIClient:
    """A DRF test client logged in as ``alice``."""
    client = APIClient()
    client.force_authenticate(alice)
    return client
