#!/usr/bin/env bash
# Set up the machine (idempotent) and run the whole test suite: lint, type check, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check bot runners tests bench
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
