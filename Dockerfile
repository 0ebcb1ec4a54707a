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
ENTRYPOINT ["promisebot"]
CMD ["--help"]
