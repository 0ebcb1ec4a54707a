"""`promisebot serve [--host H] [--port P]`: the webhook server (docs/bot.md).

With `REDIS_URL`, events are queued on Redis for `promisebot worker` processes; without it (the
embedded default) a worker thread of this process runs the same job functions. Exit codes: 1
when the configuration is invalid (the message names the variable), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys

from bot.server.config import ConfigError, load_config


def build(config_env: dict[str, str] | None = None):  # noqa: ANN201 - (app, queue), flask stays out of the CLI's import
    """The flask app and its queue, from the environment (also the WSGI entry point's)."""
    from bot.jobs.handlers import run_event
    from bot.jobs.queue import InlineQueue, JobQueue, RqQueue
    from bot.jobs.services import Services
    from bot.server.app import create_app
    from bot.server.readiness import checks

    config = load_config(config_env)
    services = Services.from_config(config)
    queue: JobQueue
    if services.backend.redis is not None:
        queue = RqQueue(services.backend.redis)
    else:
        queue = InlineQueue(lambda payload, received: run_event(payload, received, services))
    return create_app(config, services.backend, queue, checks(services)), queue


def run(args: argparse.Namespace) -> int:
    from bot.server.logs import setup_logging

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"promisebot serve: {exc}", file=sys.stderr)
        return 1
    setup_logging(config.secrets())
    app, _queue = build()
    app.run(host=args.host, port=args.port, threaded=True)
    return 0
