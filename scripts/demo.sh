#!/usr/bin/env bash
# The demo, the README's first command: the example project at work against the TensorPix
# emulator, with a Celery worker and beat, the admin and the REST API. Creates or reuses
# the virtualenv, then runs scripts/demo.py (see its docstring, or `scripts/demo.sh -h`).
#
#   scripts/demo.sh                            until Ctrl-C, with the development server
#   scripts/demo.sh --no-server --until-done   headless: exits once every job has ended
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
exec "$VENV/bin/python" scripts/demo.py "$@"
