#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (see
# install.sh), then runs ruff, the layer contracts (lint-imports) and pytest. Tests start their own servers
# (PulseAudio, websocket, Triton, Chromium) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
QT_EXTRAS="${QT_EXTRAS:-mic,dev,triton,riva,base}" bash deploy/install.sh
.venv/bin/ruff check .
# The floors (pyproject.toml [tool.importlinter], docs/architecture.md): no package imports one above it.
.venv/bin/lint-imports --no-cache
mkdir -p artifacts
exec .venv/bin/python -m pytest -q --timeout=900 --junitxml=artifacts/junit.xml "$@"
