"""The API's OpenAPI schema: generated without warnings, kept by every response (schemathesis),
and not needed for the API to work."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
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
from hypothesis import strategies as st
from schemathesis import checks

from django_tensorpix.client import TensorPixClient
from django_tensorpix.models import Job, MLModel, RestoredVideo, Video
from django_tensorpix.sync import sync_jobs, sync_ml_models
from django_tensorpix.tasks import archive_job_output
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
URL = "https://media.example.com/clip_720p.mp4"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def example_api_schema(
    db: Any, settings: Any, alice: Any, bob: Any, tensorpix_account: Any, tmp_path: Path
) -> Iterator[Any]:
    """The example project's schema, served by its URLconf, with some data to read."""
    settings.ROOT_URLCONF = "example.urls"
    settings.ALLOWED_HOSTS = ["*"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # No creation throttle here: the point is to reach the views, not the throttle.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    alice.set_password(PASSWORD)
    alice.save()
    sync_ml_models([ML_MODEL])
    sync_jobs(page_of_jobs(3))
    Job.objects.update(user=alice)
    Video.objects.update(user=alice)
    sync_jobs(page_of_jobs(2, first_id=9000))
    with TensorPixClient.for_account() as client:  # two jobs TensorPix really has
        created = [client.create_job_from_url(video_url=URL, ml_models=[1]) for _ in range(2)]
        tensorpix_account.advance(24 * 3600)
        client.create_job_from_url(video_url=URL, ml_models=[1])
        for page in client.iter_job_pages():
            sync_jobs(page)
    Job.objects.filter(tensorpix_id__in=[job["id"] for job in created]).update(user=alice)
    # As Django's test client does: a request must not close the test's connection (its
    # transaction holds the data above).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Archive's task runs in the request (there is no broker here); a failing one is stored.
    archive_job_output.app.conf.task_always_eager = True
    settings.MEDIA_ROOT = str(tmp_path)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    finally:
        archive_job_output.app.conf.task_always_eager = False
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Which rows a generated ``{id}`` may name, by the path's first segment: real ids (alice's and
# bob's) half of the time, so that actions reach real objects, not only 404s.
ID_MODELS = {"jobs": Job, "videos": Video, "restored-videos": RestoredVideo, "ml-models": MLModel}


def test_no_response_of_the_example_project_breaks_its_schema(example_api_schema: Any) -> None:
    """Every operation, 15 generated requests each (bounded, repeatable): no 5xx, and every
    status code, content type and body as the schema says. Uses schemathesis's Python API
    (its pytest plugin does not run under pytest 9)."""
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    operations = [result.ok() for result in example_api_schema.get_all_operations()]
    assert len(operations) >= 12
    seen: dict[str, set[int]] = {}

    for operation in operations:
        model = ID_MODELS[operation.path.split("/")[3]]
        known_ids = st.sampled_from(list(model._default_manager.values_list("pk", flat=True)))
        strategy = st.tuples(operation.as_strategy(), st.one_of(st.none(), known_ids))

        @given(generated=strategy)
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(generated: tuple[Any, int | None]) -> None:
            case, known_id = generated
            if known_id is not None and "id" in case.path_parameters:
                case.path_parameters["id"] = known_id
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        check()

    # Not vacuous: the requests were authenticated and reached real data.
    assert 200 in seen["GET /api/tensorpix/jobs/"]
    assert 200 in seen["GET /api/tensorpix/jobs/{id}/"]
    assert 404 in seen["GET /api/tensorpix/jobs/{id}/"]
    assert 200 in seen["GET /api/tensorpix/restored-videos/{id}/"]
    assert 200 in seen["GET /api/tensorpix/jobs/{id}/download/"]
    print(seen)
