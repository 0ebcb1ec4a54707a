#!/usr/bin/env bash
# The main job on the embedded default: validate the example platform from config/examples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/promisebot validate config/examples/platform
