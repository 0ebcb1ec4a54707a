"""Prometheus metrics (docs/bot.md), exposed by `GET /metrics` of `promisebot serve` and by
`promisebot worker --metrics-port`. rq runs each job in a child process (its work horse), so a
worker keeps its metrics in prometheus_client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR`
(the worker command sets one up) holds every process's values and the exposition adds them up.
The queue depth is read from the queue itself at scrape time."""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REGISTRY = CollectorRegistry()
WEBHOOKS = Counter("promisebot_webhooks_total", "Webhook deliveries received, by forge, event and HTTP answer",
                   ["forge", "event", "code"], registry=REGISTRY)
EVENT_TO_REPORT = Histogram("promisebot_event_to_report_seconds",
                            "From webhook received to comment or status written",
                            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=REGISTRY)
JOB_SECONDS = Histogram("promisebot_job_seconds", "Time spent in a job, by kind and stage", ["kind", "stage"],
                        registry=REGISTRY)
QUEUE_DEPTH = Gauge("promisebot_queue_depth", "Jobs waiting in the queue", registry=REGISTRY,
                    multiprocess_mode="max")
LOCK_WAIT = Histogram("promisebot_lock_wait_seconds", "Time a reconcile waited for its platform's lock",
                      registry=REGISTRY)
FORGE_CALLS = Counter("promisebot_forge_api_calls_total", "Forge API calls, by forge and HTTP status",
                      ["forge", "code"], registry=REGISTRY)


def count_forge_call(forge: str, code: int) -> None:
    FORGE_CALLS.labels(forge=forge, code=str(code)).inc()


def exposition(queue_depth: Callable[[], int] | None = None) -> bytes:
    if queue_depth is not None:
        try:
            QUEUE_DEPTH.set(queue_depth())
        except Exception:  # noqa: BLE001 - a scrape must answer even when the queue cannot be read
            pass
    return generate_latest(collected())


def collected() -> CollectorRegistry:
    """This process's registry, or, in multiprocess mode, every process's values added up."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
