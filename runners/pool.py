"""A bounded pool for independent pipeline work (e.g. the workflows of different objects),
and the interruption handling that guarantees cleanup.

`run_bounded` runs callables at most `parallelism` at a time and returns their results in
order. If the calling thread is interrupted (SIGINT, or SIGTERM under `signals_raise`), the
runner is aborted (its containers and volumes removed), queued work is cancelled, running
workers are waited for, and the interruption is re-raised.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType
from typing import Protocol, TypeVar

T = TypeVar("T")


class Abortable(Protocol):
    def abort(self) -> None: ...


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so `finally` blocks clean up (see `signals_raise`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


def run_bounded(runner: Abortable, tasks: Sequence[Callable[[], T]], parallelism: int) -> list[T]:
    if parallelism <= 1 or len(tasks) <= 1:
        try:
            return [task() for task in tasks]
        except (KeyboardInterrupt, Terminated):
            runner.abort()
            raise
    pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="pipeline")
    futures = [pool.submit(task) for task in tasks]
    try:
        results = [f.result() for f in futures]
    except (KeyboardInterrupt, Terminated):
        runner.abort()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
    return results


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` in the main thread (SIGINT already raises
    KeyboardInterrupt), so cleanup code runs. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def reraise_signal(exc: BaseException) -> None:
    """After cleanup, die of the signal that interrupted us (exit status 128+signum)."""
    signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
