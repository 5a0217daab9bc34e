"""The API's OpenAPI schema: generated without warnings, kept by every response (schemathesis),
and not needed for the API to work."""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from django_tensorpix.models import Job, Video
from django_tensorpix.sync import sync_jobs, sync_ml_models
from tests.strategies import ML_MODEL, page_of_jobs

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("urlconf", ["tests.urls", "example.urls"])
def test_the_schema_generates_without_warnings_and_is_valid(urlconf: str, tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"

    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--urlconf", urlconf, "--file", str(target)
    )

    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/tensorpix/jobs/",
        "/api/tensorpix/jobs/{id}/",
        "/api/tensorpix/jobs/{id}/cancel/",
        "/api/tensorpix/jobs/{id}/refresh/",
        "/api/tensorpix/jobs/{id}/download/",
        "/api/tensorpix/jobs/{id}/archive/",
        "/api/tensorpix/videos/",
        "/api/tensorpix/restored-videos/{id}/",
        "/api/tensorpix/ml-models/",
    }
    assert "delete" not in paths["/api/tensorpix/jobs/{id}/"]
    job = schema["components"]["schemas"]["Job"]
    assert job["properties"]["input_video"]["allOf"][0]["$ref"].endswith("/Video")
    assert "remote_data" not in schema["components"]["schemas"]["JobLocal"]["properties"]


def test_the_api_works_without_drf_spectacular() -> None:
    """Blocks drf_spectacular's import in a fresh interpreter and lists jobs."""
    script = """
import sys
sys.modules["drf_spectacular"] = None
import django
from django.conf import settings
from tests import settings as base
values = {name: getattr(base, name) for name in dir(base) if name.isupper()}
values["INSTALLED_APPS"] = [app for app in base.INSTALLED_APPS if app != "drf_spectacular"]
del values["REST_FRAMEWORK"]
settings.configure(**values)
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from rest_framework.test import APIClient
client = APIClient()
client.force_authenticate(User.objects.create_user("u"))
response = client.get("/api/tensorpix/jobs/")
print(response.status_code, response.json())
"""
    environment = {
        **os.environ,
        "DATABASE_URL": "sqlite://:memory:",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200 []"


# -- schemathesis against the example project's schema ------------------------------------

PASSWORD = "correct horse battery staple"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def example_api_schema(db: Any, settings: Any, alice: Any, bob: Any, tensorpix_account: Any) -> Any:
    """The example project's schema, served by its URLconf, with some data to read."""
    settings.ROOT_URLCONF = "example.urls"
    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alice.set_password(PASSWORD)
    alice.save()
    sync_ml_models([ML_MODEL])
    sync_jobs(page_of_jobs(3))
    Job.objects.update(user=alice)
    Video.objects.update(user=alice)
    sync_jobs(page_of_jobs(2, first_id=9000))
    # As Django's test client does: a request must not close the test's connection (its
    # transaction holds the data above).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_no_response_of_the_example_project_breaks_its_schema(example_api_schema: Any) -> None:
    """Every operation, 25 generated requests each (bounded, repeatable): no 5xx, and every
    status code, content type and body as the schema says. Uses schemathesis's Python API
    (its pytest plugin does not run under pytest 9)."""
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    operations = [result.ok() for result in example_api_schema.get_all_operations()]
    assert len(operations) >= 12
    if importlib.util.find_spec("django_tensorpix.services") is None:
        # Submission (issue 10) is not merged yet: leave out what acts through it.
        operations = [op for op in operations if op.method == "get" and "download" not in op.path]
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        check()

    print(seen)
    # Not vacuous: the requests were authenticated and reached real data.
    assert 200 in seen["GET /api/tensorpix/jobs/"]
    assert 200 in seen["GET /api/tensorpix/ml-models/"]
