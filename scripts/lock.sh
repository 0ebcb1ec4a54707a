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
# redis imports redis.asyncio, which needs async-timeout on Python < 3.11.3 (Debian 12's own
# Python is 3.11.2); pip-compile on a newer Python omits it, so it is added behind that marker.
"$tools/bin/pip" download -q --no-deps -d "$tools/at" "async-timeout>=4.0.3" >/dev/null
"$tools/bin/pip" download -q --no-deps --no-binary :all: -d "$tools/at" "async-timeout>=4.0.3" >/dev/null
at_version=$(ls "$tools/at" | sed -n 's/^async_timeout-\([0-9.]*\)-py3.*/\1/p')
for lock in requirements.lock requirements-test.lock; do
  {
    echo "async-timeout==$at_version ; python_full_version < \"3.11.3\" \\"
    for file in "$tools"/at/*; do echo "    --hash=sha256:$(sha256sum "$file" | cut -d' ' -f1) \\"; done | sed '$ s/ \\$//'
    echo "    # via redis, on Python < 3.11.3 (added by scripts/lock.sh: pip-compile on a newer Python omits it)"
  } >>"$lock"
done
echo "requirements.lock and requirements-test.lock updated; run scripts/test.sh"
