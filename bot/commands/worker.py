"""`promisebot worker`: run queued jobs from Redis (`REDIS_URL` required), on any machine, as
many processes as wanted. Each job runs in a child process (rq's work horse); every worker also
starts rq's scheduler (one of them holds its lock and puts delayed retries back on the queue).

A worker killed mid-job loses nothing: once the job's heartbeat has lapsed for
`PROMISEBOT_WORKER_ABANDON_SECONDS`, the next maintenance of any live worker (every
`PROMISEBOT_WORKER_MAINTENANCE_SECONDS` while idle) puts it back on the queue, at once; a
reconcile being idempotent, it lands once (bot/jobs/queue.py). A reconcile the dead job held
the platform's lock for waits until that lock expires (`PROMISEBOT_LOCK_TTL_SECONDS`).

    PROMISEBOT_WORKER_ABANDON_SECONDS      30  a running job whose worker sent no heartbeat for
                                               this long is retried (heartbeats every third of it)
    PROMISEBOT_WORKER_MAINTENANCE_SECONDS  10  how often an idle worker looks for such jobs
    PROMISEBOT_LOCK_TTL_SECONDS            60  the reconcile lock's TTL (refreshed every third of
                                               it while held; a crashed holder's lock expires)
"""

from __future__ import annotations

import argparse
import sys

from bot.server.config import ConfigError, load_config


def _serve_metrics(port: int) -> None:
    """Metrics of this worker and its work horses on http://0.0.0.0:PORT/metrics (multiprocess
    mode: set before prometheus_client is imported, cleared of a previous run's files)."""
    import os
    import shutil
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="promisebot-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    else:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    from prometheus_client import start_http_server

    from bot.server.metrics import collected

    start_http_server(port, registry=collected())


def run(args: argparse.Namespace) -> int:
    if args.metrics_port:  # first: multiprocess mode must be on before prometheus_client is imported
        _serve_metrics(args.metrics_port)
    from redis import Redis
    from rq import Queue

    from bot.jobs.backend import lock_ttl_setting
    from bot.jobs.queue import (
        ABANDON_AFTER_SECONDS,
        MAINTENANCE_INTERVAL_SECONDS,
        QUEUE_NAME,
        PromisebotWorker,
        seconds_setting,
    )
    from bot.server.logs import setup_logging

    try:
        config = load_config()
        abandon_after = seconds_setting("PROMISEBOT_WORKER_ABANDON_SECONDS", ABANDON_AFTER_SECONDS, minimum=3)
        maintenance = seconds_setting("PROMISEBOT_WORKER_MAINTENANCE_SECONDS", MAINTENANCE_INTERVAL_SECONDS)
        lock_ttl_setting()  # checked here, read by each job
    except ConfigError as exc:
        print(f"promisebot worker: {exc}", file=sys.stderr)
        return 1
    if not config.redis_url:
        print("promisebot worker: REDIS_URL is not set (without Redis, `promisebot serve` runs the jobs itself)",
              file=sys.stderr)
        return 1
    setup_logging(config.secrets())
    # Imported once here, so each job's forked work horse starts with them loaded.
    import bot.forges.github  # noqa: F401
    import bot.forges.gitlab  # noqa: F401
    import bot.jobs.handlers  # noqa: F401
    import bot.statestores.git  # noqa: F401  (GitPython: its import asks git for its version)
    import runners.docker  # noqa: F401
    connection = Redis.from_url(config.redis_url)
    worker = PromisebotWorker([Queue(QUEUE_NAME, connection=connection)], connection=connection, name=args.name,
                              abandon_after=abandon_after, maintenance_interval=maintenance)
    worker.work(with_scheduler=True, burst=args.burst)
    return 0
