"""The queue between the web process and the work. With Redis: rq jobs, run by
`promisebot worker` processes on any machine (`PromisebotWorker`). Without Redis (the embedded
default): a worker thread of `promisebot serve` runs the very same job function, with the same
retries.

Two kinds of retry, on Redis:

* a transient forge failure (5xx, rate limit, network; a retryable `ForgeError`): the job
  returns an rq `Retry` (`run_queued`), scheduled after 5, 15, 60, 180, 600 s, or after the
  forge's Retry-After when it sent one; rq's scheduler (started by every `promisebot worker`,
  one holds its lock) puts it back on the queue when due;
* a job whose worker died (SIGKILL, OOM kill, machine lost) or that raised unexpectedly: rq's
  job-level retry (`CRASH_RETRIES`, no delay), so it needs no scheduler. rq notices a dead
  worker's job when the job's heartbeat lapses (`PromisebotWorker`: `abandon_after` seconds
  without one) at the next maintenance of a live worker, and puts it back on the queue. A
  reconcile is idempotent (the engine's bookkeeping) and the comment is edited in place, so
  a job run again lands once.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis
from rq import Queue, Retry, Worker, get_current_job
from rq.job import Job

from bot.forges.base import ForgeError
from bot.server.config import ConfigError

log = logging.getLogger("promisebot.queue")

QUEUE_NAME = "promisebot"
JOB_FUNCTION = "bot.jobs.queue.run_queued"
RETRY_INTERVALS = [5, 15, 60, 180, 600]
CRASH_RETRIES = 3
JOB_TIMEOUT_SECONDS = 3600
ABANDON_AFTER_SECONDS = 30
MAINTENANCE_INTERVAL_SECONDS = 10
WORKER_TTL_SECONDS = 60


def seconds_setting(name: str, default: int, minimum: int = 1, environ: Mapping[str, str] | None = None) -> int:
    """A whole number of seconds from the environment variable `name` (unset: `default`);
    ConfigError naming the variable when it is not one, or under `minimum`."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"{name} must be a whole number of seconds, at least {minimum} (got {value!r})")
    return int(value)


class JobQueue(Protocol):
    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None: ...

    def depth(self) -> int: ...


class RqQueue:
    """`retry_intervals`: the delays of the retries after a transient forge failure (kept in the
    job, so the worker that runs it uses the web process's setting)."""

    def __init__(self, client: redis.Redis, retry_intervals: list[int] | None = None) -> None:
        self.queue = Queue(QUEUE_NAME, connection=client)
        self.retry_intervals = list(RETRY_INTERVALS if retry_intervals is None else retry_intervals)

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        self.queue.enqueue(JOB_FUNCTION, payload, received_at, job_id=job_id, job_timeout=JOB_TIMEOUT_SECONDS,
                           retry=Retry(max=CRASH_RETRIES), meta={"retry_intervals": self.retry_intervals},
                           result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600)

    def depth(self) -> int:
        return len(self.queue)


def run_queued(data: dict[str, Any], received_at: float | None = None) -> str | Retry:
    """What an rq worker runs: the job function (`bot.jobs.handlers.run_event`); a transient
    forge failure becomes an rq `Retry`, due after the next interval of the job's
    `retry_intervals` or after the forge's Retry-After when that is given."""
    from bot.jobs.handlers import run_event

    try:
        return run_event(data, received_at)
    except ForgeError as exc:
        if not exc.retryable:
            raise
        job = get_current_job()
        return retry_after_failure(job, exc)


def retry_after_failure(job: Job | None, exc: ForgeError) -> Retry:
    intervals = [int(i) for i in (job.meta.get("retry_intervals") if job else None) or RETRY_INTERVALS]
    done = (job.number_of_retries or 0) if job else 0
    index = min(done, len(intervals) - 1)
    delay = intervals[index]
    if exc.retry_after is not None:
        delay = max(1, int(exc.retry_after + 0.999))
    delay = int(delay * random.uniform(1.0, 1.2)) if delay > 1 else delay
    intervals[index] = delay
    if done >= len(intervals):
        log.error("job failed after %d retries: %s", done, exc)
    else:
        log.warning("transient failure, retry %d of %d in %d s: %s", done + 1, len(intervals), delay, exc)
    # rq retries it after intervals[number_of_retries]; past max it fails the job.
    return Retry(max=len(intervals), interval=intervals)


class PromisebotWorker(Worker):
    """rq's forking worker (each job in a child, the work horse), tuned so that a job whose
    worker died is retried within seconds rather than rq's defaults' minutes:

    * `abandon_after`: a started job is abandoned when its worker sent no heartbeat for this
      long (rq: its StartedJobRegistry entry expires; rq's own slack is a fixed 60 s on top of
      the heartbeat interval). The worker heartbeats every `abandon_after / 3` s while a job runs.
    * `maintenance_interval`: how often an idle worker cleans rq's registries, which is when an
      abandoned job is found and retried (rq's default: every 10 minutes). An idle worker also
      wakes up that often (rq blocks on the queue for `worker_ttl - 15` s otherwise).
    """

    def __init__(self, queues: list[Queue], *, abandon_after: int = ABANDON_AFTER_SECONDS,
                 maintenance_interval: int = MAINTENANCE_INTERVAL_SECONDS, worker_ttl: int = WORKER_TTL_SECONDS,
                 **kwargs: Any) -> None:
        if abandon_after < 3:
            raise ValueError("abandon_after must be at least 3 seconds")
        self.abandon_after = abandon_after
        super().__init__(queues, maintenance_interval=maintenance_interval, worker_ttl=worker_ttl,
                         job_monitoring_interval=max(1, abandon_after // 3), **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def get_heartbeat_ttl(self, job: Job) -> int:
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = min(interval, max(0.0, job.timeout - self.current_job_working_time))
        return int(interval) + self.abandon_after - self.job_monitoring_interval


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
