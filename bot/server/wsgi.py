"""The webhook server as a WSGI application, for gunicorn (the container's default command):

    gunicorn --bind 0.0.0.0:8080 --workers 2 --threads 4 bot.server.wsgi:app

This is the Redis setup's web process: it only verifies, de-duplicates and enqueues, and
`promisebot worker` processes (any number, any machine) run the jobs. `REDIS_URL` is required:
without it each gunicorn worker process would hold its own in-memory queue and de-duplication,
so a redelivered event could run twice and a queue would die with its worker. The embedded
default (no Redis) is `promisebot serve`: one process, one queue, the jobs in a thread of it.

Configuration comes from the environment (bot/server/config.py, docs/bot.md). Importing this
module builds the app and starts startup recovery in a background thread (bot/jobs/recovery.py;
with Redis, several workers starting together enqueue each piece of work once). A missing or
invalid setting raises `ConfigError` at import: gunicorn then stops with "Worker failed to
boot" after logging the message.
"""

from __future__ import annotations

import sys

from bot.commands.serve import build
from bot.server.config import BotConfig, ConfigError, load_config
from bot.server.logs import setup_logging

NO_REDIS = ("REDIS_URL is not set: the WSGI app (gunicorn) is for the Redis setup, where workers share one "
            "queue; without Redis run `promisebot serve` (one process, jobs in-process)")


def _checked_config() -> BotConfig:
    """The configuration, or ConfigError (also printed plainly, above gunicorn's traceback)."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"promisebot (wsgi): {exc}", file=sys.stderr)
        raise
    if not config.redis_url:
        print(f"promisebot (wsgi): {NO_REDIS}", file=sys.stderr)
        raise ConfigError(NO_REDIS)
    return config


_config = _checked_config()
setup_logging(_config.secrets())
app, queue = build(recover=True)
