#!/usr/bin/env bash
# Regenerate the lock files: the newest versions pyproject.toml's ranges allow, each with its
# hashes. requirements.lock: what promisebot runs with (the container image installs it);
# requirements-test.lock: the same versions plus the test extra (setup.sh and CI install it).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install -q pip-tools
flags=(--quiet --upgrade --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links)
"$tools/bin/pip-compile" "${flags[@]}" -o requirements.lock pyproject.toml
# The test lock is constrained to the runtime lock, so both hold the same runtime versions.
echo "-c $PWD/requirements.lock" > "$tools/constraints.in"
"$tools/bin/pip-compile" "${flags[@]}" --extra test -o requirements-test.lock pyproject.toml "$tools/constraints.in"
sed -i -e "s#$tools/constraints.in#(the runtime lock)#g" -e "s#$PWD/##g" requirements-test.lock
echo "requirements.lock and requirements-test.lock updated; run scripts/test.sh"
