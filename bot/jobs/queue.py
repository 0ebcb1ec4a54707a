"""The queue between the web process and the work. With Redis: rq jobs, run by
`promisebot worker` processes on any machine, retried with backoff; a worker killed mid-job
loses nothing (rq puts the job back; a reconcile is idempotent, so it lands once). Without
Redis (the embedded default): a worker thread of `promisebot serve` runs the very same job
function, with the same retries.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis
from rq import Queue, Retry

from bot.forges.base import ForgeError

log = logging.getLogger("promisebot.queue")

QUEUE_NAME = "promisebot"
JOB_FUNCTION = "bot.jobs.handlers.run_event"
RETRY_INTERVALS = [5, 15, 60, 180, 600]
JOB_TIMEOUT_SECONDS = 3600


class JobQueue(Protocol):
    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None: ...

    def depth(self) -> int: ...


class RqQueue:
    def __init__(self, client: redis.Redis) -> None:
        self.queue = Queue(QUEUE_NAME, connection=client)

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        self.queue.enqueue(JOB_FUNCTION, payload, received_at, job_id=job_id, job_timeout=JOB_TIMEOUT_SECONDS,
                           retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                           result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600)

    def depth(self) -> int:
        return len(self.queue)


class InlineQueue:
    """The embedded default: one worker thread in this process, the same job function."""

    def __init__(self, run: Callable[[dict[str, Any], float], str], retry_intervals: list[float] | None = None) -> None:
        self._run = run
        self._intervals = RETRY_INTERVALS if retry_intervals is None else retry_intervals
        self._items: queue.Queue[tuple[dict[str, Any], float] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="promisebot-jobs", daemon=True)
        self._thread.start()

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        self._items.put((payload, received_at))

    def depth(self) -> int:
        return self._items.qsize()

    def join(self) -> None:
        """Wait until every queued job is done (tests, shutdown)."""
        self._items.join()

    def stop(self) -> None:
        self._items.put(None)
        self._thread.join(30)

    def _work(self) -> None:
        while True:
            item = self._items.get()
            try:
                if item is None:
                    return
                self._attempt(*item)
            finally:
                self._items.task_done()

    def _attempt(self, payload: dict[str, Any], received_at: float) -> None:
        for attempt in range(len(self._intervals) + 1):
            try:
                log.info("job done: %s", self._run(payload, received_at))
                return
            except ForgeError as exc:
                if not exc.retryable or attempt == len(self._intervals):
                    log.error("job failed: %s", exc)
                    return
                delay = exc.retry_after if exc.retry_after is not None else self._intervals[attempt]
                time.sleep(delay * random.uniform(1.0, 1.2))
            except Exception:  # noqa: BLE001 - one job's crash never stops the worker thread
                log.exception("job crashed")
                return
