# Sourced by the scripts: creates or reuses a virtualenv ($VENV, default .venv) and installs
# django-tensorpix in it, editable, with its test and lint extras. Reinstalls when setup.cfg
# changes.
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha1sum setup.cfg | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "Installing django-tensorpix and its dependencies into $VENV (once per setup.cfg change)…"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[test,lint]" ${EXTRA_REQUIREMENTS:-}
    touch "$stamp"
fi
