"""Settings of a Celery worker process started by a test: tests.settings plus the
test's own values (emulator address, delays, media root), passed in the environment."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import TENSORPIX as BASE_TENSORPIX

TENSORPIX = {**BASE_TENSORPIX, **json.loads(os.environ.get("TENSORPIX_TEST_OVERRIDES", "{}"))}
MEDIA_ROOT = os.environ.get("TENSORPIX_TEST_MEDIA_ROOT", "")
