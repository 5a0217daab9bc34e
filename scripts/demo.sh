#!/usr/bin/env bash
# The demo: the example project enhancing videos against the TensorPix emulator.
# Starts the emulator on 127.0.0.1:${DEMO_PORT:-8765} (clock x60), migrates the example
# project's database (DATABASE_URL, default a SQLite file), runs `manage.py tensorpix_demo`,
# and stops the emulator on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

port=${DEMO_PORT:-8765}
export TENSORPIX_API_KEY=demo-key TENSORPIX_BASE_URL="http://127.0.0.1:$port"
"$VENV/bin/python" -m django_tensorpix.testing --port "$port" --api-key "$TENSORPIX_API_KEY" \
    --speed 60 &
emulator=$!
trap 'kill $emulator 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -s -o /dev/null "$TENSORPIX_BASE_URL/api/jobs/" && break
    sleep 0.1
done

manage() { "$VENV/bin/python" example_project/manage.py "$@"; }
manage migrate --verbosity 0
manage tensorpix_demo
echo
echo "Mirrored in the example project's database; browse it with:"
echo "  $VENV/bin/python example_project/manage.py createsuperuser"
echo "  TENSORPIX_API_KEY=demo-key $VENV/bin/python example_project/manage.py runserver  # /admin/"
