#!/usr/bin/env bash
# What a new user meets, checked from the built package rather than this checkout:
#
#   1. builds the sdist, then the wheel from the sdist (so MANIFEST.in is exercised too);
#   2. installs the wheel into a fresh virtualenv, with its dependencies, nothing else;
#   3. follows README.rst's "Installing into an existing project" in a new
#      `django-admin startproject`, then checks that it works: `check` (and `check --deploy`
#      naming the missing key), `migrate`, `collectstatic` (static files shipped), the Celery
#      app knowing every task beat_schedule() names, `tensorpix_sync` against the emulator
#      started from the installed package, and the admin's job list rendering the synced
#      jobs (templates shipped).
#
# Used by .ci/run. Needs network access to the package index for the dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

work="$(mktemp -d)"
emulator_pid=""
cleanup() {
    if [ -n "$emulator_pid" ]; then kill "$emulator_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "-- building the sdist and the wheel"
"$VENV/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 ||
    { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"

echo "-- installing $(basename "$wheel") into a fresh virtualenv"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel" >"$work/pip.log" 2>&1 ||
    { cat "$work/pip.log"; exit 1; }
python="$work/venv/bin/python"

echo "-- a new project, set up as README.rst says"
cd "$work"
"$work/venv/bin/django-admin" startproject mysite
cd mysite
cat >>mysite/settings.py <<'EOF'

# As README.rst's "Installing into an existing project" says.
import os  # noqa: E402

from django_tensorpix.schedules import beat_schedule  # noqa: E402

INSTALLED_APPS += ["rest_framework", "django_tensorpix"]
TENSORPIX = {"API_KEY": os.environ.get("TENSORPIX_API_KEY", "")}
CELERY_BEAT_SCHEDULE = beat_schedule()
STATIC_ROOT = BASE_DIR / "static"
EOF
cat >mysite/celery.py <<'EOF'
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
app = Celery("mysite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
EOF
echo "from .celery import app as celery_app" >>mysite/__init__.py
sed -i 's/^from django.urls import path$/from django.urls import include, path/' mysite/urls.py
sed -i "s|^    path(.admin/., admin.site.urls),\$|&\n    path('api/tensorpix/', include('django_tensorpix.api.urls')),|" mysite/urls.py
grep -q 'django_tensorpix.api.urls' mysite/urls.py

export DJANGO_SETTINGS_MODULE=mysite.settings
echo "-- manage.py check, check --deploy, migrate, collectstatic"
"$python" manage.py check
if "$python" manage.py check --deploy >"$work/deploy.txt" 2>&1; then
    echo "check --deploy passed without an API key; it should name tensorpix.E001" >&2
    exit 1
fi
grep -q "tensorpix.E001" "$work/deploy.txt" ||
    { cat "$work/deploy.txt"; echo "check --deploy did not name tensorpix.E001" >&2; exit 1; }
"$python" manage.py migrate --verbosity 0
"$python" manage.py collectstatic --noinput --verbosity 0
test -s static/django_tensorpix/admin.css ||
    { echo "the admin stylesheet did not ship in the wheel" >&2; exit 1; }

echo "-- the Celery app knows every task beat_schedule() names"
"$python" - <<'EOF'
import django

django.setup()
from django.conf import settings

from mysite.celery import app

app.loader.import_default_modules()
missing = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} - set(app.tasks)
assert not missing, f"beat schedules tasks the worker does not know: {sorted(missing)}"
EOF

echo "-- tensorpix_sync against the emulator from the installed package"
key="check-package-key"
"$python" -m django_tensorpix.testing --port 0 --api-key "$key" --seed-jobs 7 \
    >"$work/emulator.log" 2>&1 &
emulator_pid=$!
base_url=""
for _ in $(seq 50); do
    base_url="$(grep -o 'http://[0-9.:]*' "$work/emulator.log" || true)"
    [ -n "$base_url" ] && break
    sleep 0.2
done
[ -n "$base_url" ] || { cat "$work/emulator.log"; echo "the emulator did not start" >&2; exit 1; }
export TENSORPIX_API_KEY="$key" TENSORPIX_BASE_URL="$base_url"
"$python" manage.py tensorpix_sync

echo "-- the admin's job list renders the synced jobs"
"$python" - <<'EOF'
import django

django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment

from django_tensorpix.models import Job

setup_test_environment()  # lets the test client's "testserver" host through
jobs = list(Job.objects.values_list("tensorpix_id", flat=True))
assert len(jobs) == 7, f"expected the emulator's 7 seeded jobs, found {len(jobs)}"
admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
client = Client()
client.force_login(admin)
page = client.get("/admin/django_tensorpix/job/")
assert page.status_code == 200, page.status_code
html = page.content.decode()
assert "django_tensorpix/admin.css" in html, "the admin stylesheet is not linked"
assert all(str(job_id) in html for job_id in jobs), "the job list does not show every job"
api = client.get("/api/tensorpix/jobs/")
# No DEFAULT_PAGINATION_CLASS in a new project: the API follows the host's pagination.
assert api.status_code == 200 and len(api.json()) == 7, api.content[:200]
EOF
echo "-- the package works in a fresh project"
