"""`promisebot serve [--host H] [--port P]`: the webhook server (docs/bot.md).

With `REDIS_URL`, events are queued on Redis for `promisebot worker` processes; without it (the
embedded default) a worker thread of this process runs the same job functions. Either way, on
start a background thread recovers what was missed or lost while no server ran
(bot/jobs/recovery.py): the server answers at once. Exit codes: 1 when the configuration is
invalid (the message names the variable), 2 usage error.

In a container the Redis setup runs the same app under gunicorn instead
(bot/server/wsgi.py); the embedded default is this command: one process, one queue.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from bot.server.config import ConfigError, load_config

if TYPE_CHECKING:  # flask stays out of the CLI's import
    from flask import Flask

    from bot.jobs.queue import JobQueue
    from runners.base import Runner


def build(config_env: Mapping[str, str] | None = None, *, recover: bool = False,
          runner_factory: Callable[[], Runner] | None = None) -> tuple[Flask, JobQueue]:
    """The flask app and its queue, from the environment (also the WSGI entry point's).
    `recover`: start startup recovery in a background thread. `runner_factory`: the pipeline
    runner of the jobs this process runs (default: the Docker engine's)."""
    from bot.jobs.handlers import run_event
    from bot.jobs.queue import InlineQueue, RqQueue
    from bot.jobs.services import Services
    from bot.server.app import create_app
    from bot.server.readiness import checks

    config = load_config(config_env)
    services = (Services.from_config(config) if runner_factory is None
                else Services.from_config(config, runner_factory=runner_factory))
    queue: JobQueue
    if services.backend.redis is not None:
        queue = RqQueue(services.backend.redis)
    else:
        queue = InlineQueue(lambda payload, received: run_event(payload, received, services))
    app = create_app(config, services.backend, queue, checks(services))
    if recover:
        from bot.jobs.recovery import start_recovery

        start_recovery(services, queue)
    return app, queue


def run(args: argparse.Namespace) -> int:
    from bot.server.logs import setup_logging

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"promisebot serve: {exc}", file=sys.stderr)
        return 1
    setup_logging(config.secrets())
    app, _queue = build(recover=True)
    app.run(host=args.host, port=args.port, threaded=True)
    return 0
