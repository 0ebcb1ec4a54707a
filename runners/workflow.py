"""A workflow = the pipelines of one (type, action) run for one object (contract §1.1, §1.5, §4.4).

Configure: every pipeline, serially. Before each, the controller-side "starting" status is
applied (message Pending, ConfigureWorkflowCompleted False, pipeline Running), so the status
written by pipeline N, merged into the object, is what pipeline N+1 reads in object.yaml; only
the last pipeline's message sticks, and the last one (IS_LAST_PIPELINE) marks the workflow
completed. A failure stops the workflow (later pipelines not run, no Work from the failed
one); a suspend/retryAfter in workflow-control.yaml stops it too, with no Work from that
pipeline. Delete: only the first pipeline, its output ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.kratix import status_merge as sm
from bot.kratix.labels import PROMISE_NAME_LABEL
from bot.model.objects import Promise, ResourceRequest, WorkflowAction, WorkflowType
from bot.model.works import Work
from bot.platform.yamlload import MAX_NESTING_DEPTH
from bot.secrets import SecretResolver
from bot.settings import RunnerSettings
from runners.base import (
    PipelineJob,
    PipelineResult,
    PipelineSpecError,
    Runner,
    failure_line,
    kratix_env,
    pipeline_timeout,
)
from runners.kubeapi import KubeContext


@dataclass(slots=True)
class WorkflowResult:
    wtype: WorkflowType
    action: WorkflowAction
    pipelines: list[PipelineResult] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # final merged status of the object
    works: list[Work] = field(default_factory=list)  # one per configure pipeline that produced a Work
    succeeded: bool = True
    suspended: bool = False
    retry_after_seconds: float | None = None
    failed_pipeline: str | None = None
    resume_index: int | None = None  # suspended: index of the pipeline to re-run on resume (§1.5c)
    error: str | None = None  # one line: `failure_line` of the failed pipeline, or why none could run


def run_workflow(runner: Runner, promise: Promise, obj: dict[str, Any], wtype: WorkflowType,
                 action: WorkflowAction, settings: RunnerSettings, request: ResourceRequest | None = None,
                 start_at: int = 0,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 manifests: Sequence[dict[str, Any]] = (), secrets: SecretResolver | None = None) -> WorkflowResult:
    """Run the (wtype, action) workflow of `promise` for `obj` (the full object, §1.3).

    `start_at` resumes a suspended configure workflow at that pipeline (§1.5c): earlier
    pipelines are not re-run and their entries in `status.kratix.workflows` are kept.
    `manifests` (the platform repo's other Kubernetes objects) and `secrets` are what a run's
    Kubernetes API may serve when the pipeline's rbac grants them (runners/kubeapi.py).

    Status order, as Kratix: what a pipeline writes through the API (kratix-sdk's
    publish_status) is the object's status at once (later containers read it from the API),
    then status.yaml is merged over it when the pipeline ends; the next pipeline's object.yaml
    has both.
    """
    result = WorkflowResult(wtype, action, status=sm.copy_data(obj.get("status") or {}))
    pipelines = promise.pipelines(wtype, action)
    if action == "delete":
        pipelines = pipelines[:1]  # Kratix: "only the first will be used"
    if not pipelines:
        return result
    if sm.nesting_depth(obj, MAX_NESTING_DEPTH + 1) > MAX_NESTING_DEPTH + 1:  # +1: the object wraps spec, status
        result.succeeded = False
        result.error = (f"the object's spec or status is nested more than {MAX_NESTING_DEPTH} levels deep "
                        f"(promisebot's limit is {MAX_NESTING_DEPTH} levels); no pipeline was run")
        return result
    try:
        timeout = pipeline_timeout(promise, settings)
    except PipelineSpecError as exc:
        result.succeeded, result.error = False, str(exc)
        return result
    metadata = obj.get("metadata") or {}
    generation = int(metadata.get("generation") or 1)
    if action == "configure" and (start_at == 0 or not sm.has_workflow_status(result.status)):
        result.status = sm.init_workflow_status(result.status, [p.name for p in pipelines], now())
    for index, pipeline in enumerate(pipelines):
        if index < start_at:
            continue
        is_last = index == len(pipelines) - 1
        if action == "configure":
            result.status = sm.mark_pipeline_starting(result.status, pipeline.name, now())
        job = PipelineJob(
            pipeline=pipeline, wtype=wtype, action=action,
            obj=_object_for(obj, result.status, promise.name, wtype),
            env=kratix_env(promise, pipeline, wtype, action, request),
            settings=settings, is_last=is_last, timeout_seconds=timeout,
            promise_selectors=dict(promise.destination_selectors),
            kube=KubeContext(promise=promise.body if wtype == "resource" else None, manifests=manifests,
                             secrets=secrets),
        )
        outcome = runner.run(job)
        result.pipelines.append(outcome)
        if outcome.published_status is not None:  # the API's PATCHes first (the object's status as written)
            result.status = sm.copy_data(outcome.published_status)
        if not outcome.succeeded:
            result.succeeded, result.failed_pipeline = False, pipeline.name
            result.error = failure_line(outcome)
            result.status = sm.mark_pipeline_failed(result.status, pipeline.name, action, now())
            return result
        result.status = sm.merge_statuses(result.status, outcome.status or {})
        control = outcome.control
        if is_last and action == "configure" and not control.suspends:
            result.status = sm.mark_completed(result.status, wtype, now())
        result.status = sm.apply_workflow_control(result.status, pipeline.name, control, action, now(),
                                                  generation)
        if control.suspends:
            result.suspended = True
            result.retry_after_seconds = control.retry_after_seconds
            result.resume_index = index
            return result
        if action == "configure":
            result.status = sm.mark_pipeline_succeeded(result.status, pipeline.name, now())
            result.works.append(_work(promise, pipeline.name, outcome, wtype, metadata))
    return result


def _object_for(obj: dict[str, Any], status: dict[str, Any], promise: str,
                wtype: WorkflowType) -> dict[str, Any]:
    out = sm.copy_data(obj)
    out["status"] = sm.copy_data(status)
    if wtype == "resource":
        md = out.setdefault("metadata", {})
        md["labels"] = {**(md.get("labels") or {}), PROMISE_NAME_LABEL: promise}
    return out


def _work(promise: Promise, pipeline: str, outcome: PipelineResult, wtype: WorkflowType,
          metadata: dict[str, Any]) -> Work:
    if wtype == "promise":
        return Work(promise=promise.name, pipeline=pipeline, groups=outcome.groups)
    return Work(promise=promise.name, pipeline=pipeline, groups=outcome.groups,
                resource_name=str(metadata.get("name") or ""),
                resource_namespace=str(metadata.get("namespace") or "default"))
