"""`promisebot worker`: run queued jobs from Redis (`REDIS_URL` required), on any machine, as
many processes as wanted. Each job runs in a child process (rq's work horse); a worker killed
mid-job loses nothing: the job is put back and, a reconcile being idempotent, lands once.
"""

from __future__ import annotations

import argparse
import sys

from bot.server.config import ConfigError, load_config


def run(args: argparse.Namespace) -> int:
    from redis import Redis
    from rq import Queue, Worker

    from bot.jobs.queue import QUEUE_NAME
    from bot.server.logs import setup_logging

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"promisebot worker: {exc}", file=sys.stderr)
        return 1
    if not config.redis_url:
        print("promisebot worker: REDIS_URL is not set (without Redis, `promisebot serve` runs the jobs itself)",
              file=sys.stderr)
        return 1
    setup_logging(config.secrets())
    connection = Redis.from_url(config.redis_url)
    worker = Worker([Queue(QUEUE_NAME, connection=connection)], connection=connection, name=args.name)
    worker.work(with_scheduler=True, burst=args.burst)
    return 0
