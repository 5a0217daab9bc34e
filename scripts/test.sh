#!/usr/bin/env bash
# Runs the test suite, creating or reusing the virtualenv .venv on the way.
#
#   scripts/test.sh                   SQLite, then PostgreSQL
#   TEST_DATABASES=sqlite scripts/test.sh -k sync     one backend, extra pytest arguments
#
# PostgreSQL is reached at POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test;
# pytest-django creates and drops test_test). PYTHON picks the interpreter for a new venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
status=0
for database in ${TEST_DATABASES:-sqlite postgres}; do
    case "$database" in
        sqlite) url="sqlite://:memory:" ;;
        postgres) url="$POSTGRES_URL" ;;
        *) echo "unknown database '$database' (sqlite or postgres)" >&2; exit 2 ;;
    esac
    echo "== tests on $database"
    DATABASE_URL="$url" "$VENV/bin/python" -m pytest "$@" || status=$?
done
exit $status
