"""Run the planned workflows, bounded in parallel, and fold each outcome into its record
(contract §1.5, §4.4, §4.5).

A failing or crashing workflow never stops the others: its failure (pipeline, logs) is
recorded and its previous outputs stay in place; Works of the pipelines that did succeed
before it are updated, as Kratix's per-pipeline work-writer does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.kratix.conditions import (
    CONFIGURE_COMPLETED,
    CONFIGURE_FAILED_REASON,
    DELETE_COMPLETED,
    DELETE_FAILED_REASON,
    set_status_condition,
)
from bot.kratix.labels import MANUAL_RECONCILIATION_LABEL, is_true
from bot.kratix.objectyaml import promise_object, request_object
from bot.kratix.status_merge import copy_data
from bot.model.objects import OutcomeState
from bot.model.records import ObjectRecord, bounded_logs, now_iso
from bot.model.works import Work
from bot.reconcile.decide import Task, now_utc
from bot.redact import redact
from bot.secrets import SecretResolver
from bot.settings import RunnerSettings
from runners.base import Runner, RunnerUnavailable
from runners.pool import run_bounded
from runners.workflow import run_workflow


@dataclass(slots=True)
class Outcome:
    """What one workflow run produced, reduced to what the reconciler needs."""

    task: Task
    succeeded: bool = False
    suspended: bool = False
    next_retry_at: str | None = None
    resume_at: int = 0
    failed_pipeline: str | None = None
    status: dict[str, Any] = field(default_factory=dict)
    works: list[Work] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def state(self) -> OutcomeState:
        if self.succeeded:
            return "succeeded"
        return "suspended" if self.suspended else "failed"


def _run_one(runner: Runner, settings: RunnerSettings, task: Task, status: dict[str, Any],
             manifests: Sequence[dict[str, Any]] = (), secrets: SecretResolver | None = None) -> Outcome:
    if task.wtype == "promise":
        obj = promise_object(task.promise, status)
    else:
        assert task.request is not None
        obj = request_object(task.request, status)
    out = Outcome(task)
    try:
        result = run_workflow(runner, task.promise, obj, task.wtype, task.action, settings,
                              request=task.request, start_at=task.start_at, manifests=manifests, secrets=secrets)
    except RunnerUnavailable:
        raise  # nothing can run: the reconcile stops before writing anything
    except Exception as exc:  # noqa: BLE001 - one object's crash must not stop the others
        out.error = redact(f"{type(exc).__name__}: {exc}")
        out.failed_pipeline = "(runner)"
        out.logs = [{"pipeline": "(runner)", "container": "", "exitCode": None, "log": "", "reason": out.error}]
        out.status = copy_data(status)
        configure = task.action == "configure"
        set_status_condition(out.status, CONFIGURE_COMPLETED if configure else DELETE_COMPLETED, "False",
                             CONFIGURE_FAILED_REASON if configure else DELETE_FAILED_REASON,
                             f"The workflow could not run: {out.error}")
        return out
    out.succeeded = bool(result.succeeded) and not result.suspended
    out.suspended = bool(result.suspended)
    out.failed_pipeline = result.failed_pipeline
    out.status = result.status
    out.works = list(result.works)
    out.resume_at = result.resume_index or 0
    if result.retry_after_seconds is not None:
        out.next_retry_at = (now_utc() + timedelta(seconds=result.retry_after_seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
    out.error = result.error
    out.logs = [
        {"pipeline": p.pipeline, "container": c.name, "exitCode": c.exit_code, "log": c.logs,
         "reason": p.reason if c is p.failed else c.reason}
        for p in result.pipelines if not p.succeeded
        for c in p.containers if not c.succeeded
    ]
    if result.error and not out.logs:
        out.logs = [{"pipeline": result.failed_pipeline or "", "container": "", "exitCode": None,
                     "log": "", "reason": result.error}]
    return out


def run_tasks(
    runner: Runner,
    settings: RunnerSettings,
    tasks: list[tuple[Task, dict[str, Any]]],
    on_done: Callable[[Outcome], None] | None = None,
    manifests: Sequence[dict[str, Any]] = (),
    secrets: SecretResolver | None = None,
) -> list[Outcome]:
    """Run every (task, current status) with at most `settings.parallelism` at once; on an
    interruption the runner's containers are cleaned up (runners/pool.py). `manifests` and
    `secrets`: what a pipeline's Kubernetes API may serve (runners/kubeapi.py)."""

    def job(task: Task, status: dict[str, Any]) -> Callable[[], Outcome]:
        def go() -> Outcome:
            outcome = _run_one(runner, settings, task, status, manifests, secrets)
            if on_done:
                on_done(outcome)
            return outcome
        return go

    return run_bounded(runner, [job(t, s) for t, s in tasks], settings.parallelism)  # type: ignore[arg-type]


def fold_configure(record: ObjectRecord, outcome: Outcome, works: dict[str, Work]) -> None:
    """Apply a configure outcome to the object's record and its current Works (by key).

    Succeeded: the Works are replaced, and Works of pipelines no longer in the workflow are
    dropped (§1.6). Failed or suspended: Works of the pipelines that succeeded are updated,
    the others stay as they were (§1.5c, §4.4).
    """
    task = outcome.task
    record.status = outcome.status
    record.last_run = now_iso()
    record.logs = bounded_logs(outcome.logs)
    produced = {w.key: w for w in outcome.works}
    if outcome.succeeded:
        keep_pipelines = {p.name for p in task.promise.pipelines(task.wtype, "configure")}
        for key in [k for k, w in works.items() if w.pipeline and w.pipeline not in keep_pipelines]:
            del works[key]
        record.resume = None
        record.cache_key = task.cache_key
    elif outcome.suspended:
        record.resume = {"pipeline": outcome.resume_at, "nextRetryAt": outcome.next_retry_at,
                         "cacheKey": task.cache_key}
        record.cache_key = task.cache_key
    else:
        record.resume = None
        record.cache_key = task.cache_key  # a failed workflow re-runs on a change, not on every event
    works.update(produced)
    record.paused_seen = False  # a run from the start answered an unpause (§4.7)
    labels = task.request.labels if task.request else task.promise.labels
    if is_true(labels, MANUAL_RECONCILIATION_LABEL):  # this run answered the label (§4.7)
        record.manual_seen = True
