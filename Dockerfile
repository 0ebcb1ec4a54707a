# promisebot as a container: the CLI, the webhook server and rq workers share this image.
# Pipelines run on the Docker engine named by DOCKER_HOST (or a mounted /var/run/docker.sock);
# inputs and outputs move through the Docker archive API, so no host paths are shared.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 promisebot
WORKDIR /app
# The exact, hash-checked versions of requirements.lock first (a layer that changes only with
# the lock), then promisebot itself without resolving anything again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY runners ./runners
COPY config ./config
RUN pip install --no-cache-dir --no-deps . && promisebot --version

USER promisebot
EXPOSE 8080
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
