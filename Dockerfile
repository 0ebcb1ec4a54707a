# promisebot as a container: the CLI, the webhook server and rq workers share this image
# (docs/deploy.md). Pipelines run on the Docker engine named by DOCKER_HOST (or a mounted
# /var/run/docker.sock); inputs and outputs move through the Docker archive API, so no host
# paths are shared.
#
#   docker build -t promisebot/promisebot .
#   docker build --build-arg BASE=promisebot/runtime-base:latest ...   no registry: a local base
#                                                                     (scripts/build-images.sh --deploy)
#
# Two stages, both FROM ${BASE} (the same Python at the same path, so the virtualenv made in
# the first runs in the second): `build` makes wheels of the exact, hash-checked versions of
# requirements.lock and installs them, only them, offline, into the virtualenv /opt/promisebot,
# and makes promisebot's own wheel. The runtime stage takes that virtualenv (a layer that
# changes only with the lock) and installs promisebot's wheel into it, offline; nothing else of
# the build stage: no compiler, no pip cache, no source tree. Classic builder and BuildKit alike
# (no BuildKit-only syntax).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/promisebot
WORKDIR /src
# The locked requirements first: a layer that changes only with the lock. Every one of them is a
# published wheel whose hash the lock holds; --require-hashes checks them once when fetched and
# again when installed from /wheels with no index at all. --no-deps: the lock is the whole set,
# resolved once by scripts/lock.sh; nothing is added to it here (Debian bookworm's Python is
# 3.11.2, for which redis would ask for async-timeout, used only by redis.asyncio).
# A wheelhouse/ directory in the build context (optional: the glob lets it be absent) holds them
# already: then nothing is fetched (--no-index), which is how scripts/build-images.sh builds on
# a machine whose containers cannot reach PyPI (it downloads them on the host; docs/deploy.md).
# It holds a setuptools wheel for promisebot's own build too. Without it, PyPI.
COPY requirements.lock wheelhous[e] /wheels/
RUN offline=""; if ls /wheels/*.whl >/dev/null 2>&1; then offline=--no-index; fi \
 && /opt/promisebot/bin/pip wheel -q $offline --find-links /wheels --require-hashes --no-deps \
      -r /wheels/requirements.lock -w /wheels \
 && /opt/promisebot/bin/pip install -q --no-index --find-links /wheels --require-hashes --no-deps \
      -r /wheels/requirements.lock
# promisebot itself, as a wheel (bot/defaults.yaml is a link to config/defaults.yaml: the wheel
# carries the file); the runtime stage installs it.
COPY pyproject.toml README.md ./
COPY config/defaults.yaml ./config/defaults.yaml
COPY bot ./bot
COPY runners ./runners
RUN offline=""; if ls /wheels/setuptools-*.whl >/dev/null 2>&1; then offline=--no-index; fi \
 && /opt/promisebot/bin/pip wheel -q $offline --find-links /wheels --no-deps -w /wheels/self .

FROM ${BASE}
# git and openssh-client fetch platform repositories and push to Git state stores. The local
# base (promisebot/runtime-base) has them; python:3.11-slim-bookworm gets them here.
RUN if ! command -v git >/dev/null || ! command -v ssh >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --gid 10001 promisebot \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin promisebot \
 && mkdir -p /var/lib/promisebot \
 && chown 10001:10001 /var/lib/promisebot
COPY --from=build /opt/promisebot /opt/promisebot
COPY --from=build /wheels/self /tmp/promisebot-wheel
RUN /opt/promisebot/bin/pip install -q --no-index --no-deps --disable-pip-version-check --no-cache-dir \
      /tmp/promisebot-wheel/promisebot-*.whl \
 && rm -rf /tmp/promisebot-wheel \
 && /opt/promisebot/bin/promisebot --version
COPY scripts/container-healthcheck.py /opt/promisebot/healthcheck.py
# PROMISEBOT_DATA_DIR: the clones of platform repositories; mount a volume there to keep them
# (docker-compose.yml shares one between the web process and the workers: startup recovery
# walks what the workers cloned).
ENV PATH=/opt/promisebot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMISEBOT_DATA_DIR=/var/lib/promisebot

USER 10001:10001
WORKDIR /home/promisebot
EXPOSE 8080
# What "healthy" means follows what runs (scripts/container-healthcheck.py): gunicorn and
# `promisebot serve` answer GET /healthz; a worker reaches its Redis (and serves
# --metrics-port); any other CLI command is healthy while it runs.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/promisebot/bin/python3", "/opt/promisebot/healthcheck.py"]

# What runs: `gunicorn ...` is run as is; any other arguments go to the promisebot CLI.
#   docker run IMAGE                          the web process of the Redis setup (the CMD below:
#                                             gunicorn, bot/server/wsgi.py; needs REDIS_URL and
#                                             refuses to start without it)
#   docker run IMAGE worker                   a job worker of the Redis setup (as many as wanted)
#   docker run IMAGE serve --host 0.0.0.0     the embedded default: one process, no Redis, the jobs
#                                             in a thread of it (not gunicorn: its worker processes
#                                             would each hold their own in-memory queue)
#   docker run IMAGE plan --platform /src     any CLI command
# `exec` leaves gunicorn or promisebot as PID 1, so `docker stop` reaches it.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$1\" = gunicorn ]; then exec \"$@\"; else exec promisebot \"$@\"; fi", "promisebot"]
CMD ["gunicorn", "--bind", "0.0.0.0:8080", "--workers", "2", "--threads", "4", "bot.server.wsgi:app"]

# Last, so that a new version or revision rebuilds no layer but this one.
ARG VERSION=0.1.0
ARG REVISION=
ARG SOURCE=
LABEL org.opencontainers.image.title="promisebot" \
      org.opencontainers.image.description="Git-native platform orchestrator: Kratix Promises without a platform cluster (CLI, webhook server, workers)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
