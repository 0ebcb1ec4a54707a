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

A reconcile that finds its platform's lock taken (`LockBusy`, bot/jobs/locks.py) neither
fails nor holds its worker: it waits in the queue. On Redis the job ends (successfully, saying
so) after scheduling the same event again as a new rq job (`<job id>-wait<N>`, due after 1 s,
then 2, 4, 8, 10, 10... s with jitter; rq's scheduler puts it on the queue when due), with fresh
crash and transient-failure retries and the time its wait began, so the lock-wait metric counts
the whole wait. The embedded default puts the job back at the end of its queue after the same
delay (a timer: the worker thread runs the other jobs meanwhile).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import redis
from rq import Queue, Retry, Worker, get_current_job
from rq.job import Job

from bot.forges.base import ForgeError
from bot.jobs.locks import LockBusy, queued_wait
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
LOCK_RETRY_SECONDS = 1.0  # a job that found its lock taken runs again after this, doubling
LOCK_RETRY_MAX_SECONDS = 10.0  # up to this
RESULT_TTL_SECONDS = 24 * 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600


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
        self.queue.enqueue(JOB_FUNCTION, payload, received_at, **_job_options(job_id, self.retry_intervals))

    def depth(self) -> int:
        return len(self.queue)


def _job_options(job_id: str, retry_intervals: list[int], lock_wait: dict[str, Any] | None = None) -> dict[str, Any]:
    """The rq options of a job of the queue (its first run, or its run again after `LockBusy`:
    `lock_wait` then says since when and how many times it has waited)."""
    meta: dict[str, Any] = {"retry_intervals": retry_intervals}
    if lock_wait is not None:
        meta["lock_wait"] = lock_wait
    return {"job_id": job_id, "job_timeout": JOB_TIMEOUT_SECONDS, "retry": Retry(max=CRASH_RETRIES), "meta": meta,
            "result_ttl": RESULT_TTL_SECONDS, "failure_ttl": FAILURE_TTL_SECONDS}


def lock_retry_delay(waits: int, first: float = LOCK_RETRY_SECONDS, cap: float = LOCK_RETRY_MAX_SECONDS) -> float:
    """The delay before the `waits`-th run again (1, 2, ...) of a job that found its lock taken:
    `first` doubling up to `cap`, with up to 20% jitter (jobs waiting together spread out)."""
    return min(cap, first * 2 ** max(0, waits - 1)) * random.uniform(1.0, 1.2)


def run_queued(data: dict[str, Any], received_at: float | None = None) -> str | Retry:
    """What an rq worker runs: the job function (`bot.jobs.handlers.run_event`); a transient
    forge failure becomes an rq `Retry`, due after the next interval of the job's
    `retry_intervals` or after the forge's Retry-After when that is given; a taken lock
    (`LockBusy`) schedules the event again as a new job (`wait_in_queue`) and ends this one."""
    from bot.jobs.handlers import run_event

    job = get_current_job()
    lock_wait = (job.meta.get("lock_wait") if job else None) or {}
    try:
        with queued_wait(lock_wait.get("since")):
            return run_event(data, received_at)
    except LockBusy as busy:
        if job is None:
            raise
        return wait_in_queue(job, data, received_at, busy)
    except ForgeError as exc:
        if not exc.retryable:
            raise
        return retry_after_failure(job, exc)


def wait_in_queue(job: Job, data: dict[str, Any], received_at: float | None, busy: LockBusy) -> str:
    """The event of `job`, which found its lock taken, scheduled again as a new job of the same
    queue, `<first job id>-wait<N>`, due after `lock_retry_delay(N)` (rq's scheduler enqueues
    it); it carries when the wait began (for the lock-wait metric) and the retry intervals, and
    has the whole crash and transient-failure retries of a new job. The id is derived, so a
    crashed `job` run again schedules the same job, not a second one; and no delivery
    de-duplication applies (that is the web process's, before the first enqueue)."""
    wait = dict(job.meta.get("lock_wait") or {})
    waits = int(wait.get("waits", 0)) + 1
    first_id = str(wait.get("job") or job.id)
    since = float(wait.get("since") or time.time())
    intervals = [int(i) for i in job.meta.get("retry_intervals") or RETRY_INTERVALS]
    delay = lock_retry_delay(waits)
    next_id = f"{first_id}-wait{waits}"
    Queue(job.origin, connection=job.connection).enqueue_in(
        timedelta(seconds=delay), JOB_FUNCTION, data, received_at,
        **_job_options(next_id, intervals, {"job": first_id, "waits": waits, "since": since}))
    log.info("%s; waiting in the queue since %.1f s: %s runs in %.1f s", busy, time.time() - since, next_id, delay)
    return f"waiting for the lock {busy.name} (held by {busy.owner or 'another job'}); queued again as {next_id}"


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

    def perform_job(self, job: Job, queue: Queue) -> bool:
        """rq's. In a work horse, a process for this one job that ends with `os._exit` (no
        `atexit`), warm Kubernetes API sidecars are kept only once the job has run a second
        pipeline, and those left are removed at the end (runners/sidecar.py)."""
        horse = getattr(self, "_is_horse", False)
        if horse:
            from runners import sidecar

            sidecar.one_job_process()
        try:
            return bool(super().perform_job(job, queue))
        finally:
            if horse:
                sidecar.drain_all()

    def get_heartbeat_ttl(self, job: Job) -> int:
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = min(interval, max(0.0, job.timeout - self.current_job_working_time))
        return int(interval) + self.abandon_after - self.job_monitoring_interval


@dataclass
class _Item:
    """A job of the embedded default's queue; `waits` and `since` once it found its lock taken."""

    payload: dict[str, Any]
    received_at: float
    waits: int = 0
    since: float | None = None


class InlineQueue:
    """The embedded default: one worker thread in this process, the same job function. A job
    that finds its lock taken (`LockBusy`) goes back to the end of the queue after
    `lock_retry_delay` (`lock_retry`: its first delay and cap), put there by a timer: the worker
    thread runs the jobs queued behind it meanwhile. `join` waits for it too."""

    def __init__(self, run: Callable[[dict[str, Any], float], str], retry_intervals: list[float] | None = None,
                 lock_retry: tuple[float, float] = (LOCK_RETRY_SECONDS, LOCK_RETRY_MAX_SECONDS)) -> None:
        self._run = run
        self._intervals = RETRY_INTERVALS if retry_intervals is None else retry_intervals
        self._lock_retry = lock_retry
        self._items: queue.Queue[_Item | None] = queue.Queue()
        self._state = threading.Condition()  # guards the three below
        self._outstanding = 0  # jobs queued, running or waiting for their lock
        self._timers: set[threading.Timer] = set()  # jobs waiting for their lock, to be put back
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="promisebot-jobs", daemon=True)
        self._thread.start()

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        with self._state:
            self._outstanding += 1
        self._items.put(_Item(payload, received_at))

    def depth(self) -> int:
        """Jobs waiting: in the queue, or to be put back in it after finding their lock taken."""
        with self._state:
            return self._items.qsize() + len(self._timers)

    def join(self) -> None:
        """Wait until every queued job is done (tests, shutdown), a job waiting for its lock
        included."""
        with self._state:
            self._state.wait_for(lambda: self._outstanding == 0)

    def stop(self) -> None:
        """Stop the worker thread after its current job; jobs waiting for their lock are dropped."""
        with self._state:
            self._stopped = True
            for timer in self._timers:
                timer.cancel()
            self._finished(len(self._timers))
            self._timers.clear()
        self._items.put(None)
        self._thread.join(30)

    def _finished(self, count: int = 1) -> None:
        """`count` jobs are done for good (the caller holds `_state`)."""
        self._outstanding -= count
        self._state.notify_all()

    def _work(self) -> None:
        while True:
            item = self._items.get()
            if item is None:
                return
            if self._attempt(item):
                with self._state:
                    self._finished()

    def _attempt(self, item: _Item) -> bool:
        """Run the job, retrying transient forge failures; False when it went back to wait for
        its lock, True when it is done (succeeded, or failed for good)."""
        for attempt in range(len(self._intervals) + 1):
            try:
                with queued_wait(item.since):
                    log.info("job done: %s", self._run(item.payload, item.received_at))
                return True
            except LockBusy as busy:
                return not self._wait_in_queue(item, busy)
            except ForgeError as exc:
                if not exc.retryable or attempt == len(self._intervals):
                    log.error("job failed: %s", exc)
                    return True
                delay = exc.retry_after if exc.retry_after is not None else self._intervals[attempt]
                time.sleep(delay * random.uniform(1.0, 1.2))
            except Exception:  # noqa: BLE001 - one job's crash never stops the worker thread
                log.exception("job crashed")
                return True
        return True

    def _wait_in_queue(self, item: _Item, busy: LockBusy) -> bool:
        """Put `item` back at the end of the queue after `lock_retry_delay` (a timer); False
        when the queue is stopping (the job is dropped)."""
        item.waits += 1
        if item.since is None:
            item.since = time.time()
        delay = lock_retry_delay(item.waits, *self._lock_retry)

        def put_back() -> None:
            with self._state:
                if timer not in self._timers:  # cancelled by stop()
                    return
                self._timers.discard(timer)
                self._items.put(item)

        with self._state:
            if self._stopped:
                return False
            timer = threading.Timer(delay, put_back)
            timer.daemon = True
            self._timers.add(timer)
            timer.start()
        log.info("%s; waiting in the queue since %.1f s, runs again in %.1f s", busy, time.time() - item.since, delay)
        return True
