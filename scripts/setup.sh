#!/usr/bin/env bash
# Idempotent setup of everything promisebot and its tests need on a fresh Debian/Ubuntu
# machine (or a laptop with Docker): system packages, a running Docker engine, the
# virtualenv with the project and its test extra, and the locally built images.
# Safe to re-run; each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. System packages (Debian names). Only what is missing is installed.
missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
# docker.io: the client, and the engine unless one already answers.
if ! command -v docker >/dev/null 2>&1 || { ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; }; then
  missing+=(docker.io)
fi
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
dpkg -s openssh-server >/dev/null 2>&1 || missing+=(openssh-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)  # the bot's queue; tests start their own
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)  # docker-compose.yml and its test (tests/image)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]}"
    aptlog=$(mktemp)
    if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
             apt-get install -y -qq "${missing[@]}"; } >"$aptlog" 2>&1 </dev/null; then
      cat "$aptlog" >&2; log "apt-get install failed"; exit 1
    fi
    rm -f "$aptlog"
  else
    log "missing: ${missing[*]} (install them with your package manager)"; exit 1
  fi
fi

python3 - <<'PY' || { log "Python >= 3.11 is required"; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

# 2. A Docker engine: the one DOCKER_HOST names, the local socket, or start dockerd.
if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then log "DOCKER_HOST=$DOCKER_HOST does not answer"; exit 1; fi
  log "starting dockerd"
  $SUDO sh -c 'nohup dockerd >/var/log/promisebot-dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see /var/log/promisebot-dockerd.log"; exit 1; }
fi

# 3. The virtualenv: the exact versions of requirements-test.lock (hash-checked; regenerate it
#    with scripts/lock.sh after changing a range in pyproject.toml), then promisebot itself.
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
stamp=.venv/.promisebot-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements-test.lock -nt "$stamp" ]; then
  log "installing promisebot into .venv (requirements-test.lock)"
  if ! { .venv/bin/pip install -q --upgrade pip \
         && .venv/bin/pip install -q --require-hashes -r requirements-test.lock \
         && .venv/bin/pip install -q --no-deps -e .; } >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2; log "pip install failed"; exit 1
  fi
  touch "$stamp"
fi

# 4. Images built locally (no registry needed): base images and the example pipelines.
if [ -x scripts/build-images.sh ]; then scripts/build-images.sh; fi
log "ready"
