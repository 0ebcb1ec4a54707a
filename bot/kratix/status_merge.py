"""Status handling of Kratix's status-writer and workflow controller, as pure functions.

Contract §1.5b (status.yaml: shallow merge, conditions by type, the `kratix` key refused,
promise workflows keep only `message`, MarkAsCompleted) and §1.5c (workflow-control.yaml:
suspend / retryAfter / message, pipeline entries in `status.kratix.workflows.pipelines`).
Also the controller-side transitions of §1.5b/§4.4 (a pipeline starting resets `message` to
"Pending"; a failure sets ConfigureWorkflowFailed). Every function returns a new dict and
never mutates its arguments. A condition is set as Kratix's status-writer sets it
(`with_condition`: replaced whole, lastTransitionTime the time given); the reconciler's own
conditions keep their time while their status holds (`bot.kratix.conditions.set_status_condition`).

Nothing here recurses over the data: copies are iterative (`copy_data`), so a deeply nested
status cannot exhaust the stack; `check_incoming` refuses a status.yaml nested deeper than
`MAX_NESTING_DEPTH` (the limit the YAML loader applies) with a message naming the file.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import PromisebotError
from bot.kratix import goduration
from bot.kratix.conditions import (
    CONFIGURE_COMPLETED,
    CONFIGURE_FAILED_REASON,
    DELETE_COMPLETED,
    DELETE_FAILED_REASON,
    DELETE_SUSPENDED_REASON,
    PENDING,
    RECONCILED,
    WORKFLOW_PENDING_REASON,
)
from bot.model.objects import WorkflowAction, WorkflowType
from bot.platform.yamlload import MAX_NESTING_DEPTH, nesting_message

COMPLETED_MESSAGES: dict[WorkflowType, str] = {"resource": "Resource requested",
                                              "promise": "Promise configured"}
_COPY_DEPTH_GUARD = 10_000


class StatusError(PromisebotError, ValueError):
    """status.yaml or workflow-control.yaml written by a pipeline is not acceptable."""


@dataclass(frozen=True, slots=True)
class WorkflowControl:
    """A parsed /kratix/metadata/workflow-control.yaml (§1.5c)."""

    suspend: bool = False
    retry_after_seconds: float | None = None  # set when retryAfter was given; wins over suspend
    retry_after: str = ""  # as written
    message: str = ""

    @property
    def suspends(self) -> bool:
        """Kratix's IfSuspendOrRetry: no Work from this pipeline, later pipelines not run."""
        return self.suspend or self.retry_after_seconds is not None


def copy_data(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, scalars), without recursion. Other mutable
    values (sets, bytearrays from YAML tags) are copied with `copy.deepcopy`. Data nested more
    than `_COPY_DEPTH_GUARD` levels (or containing itself) raises StatusError."""
    if isinstance(value, dict):
        root: Any = {}
    elif isinstance(value, list):
        root = []
    else:
        return _copy_leaf(value)
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]  # (source container, its empty copy, depth)
    while stack:
        source, target, depth = stack.pop()
        if depth > _COPY_DEPTH_GUARD:
            raise StatusError(f"status data nested more than {_COPY_DEPTH_GUARD} levels deep (or containing "
                              "itself); refused")
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            if isinstance(item, dict):
                new: Any = {}
                stack.append((item, new, depth + 1))
            elif isinstance(item, list):
                new = []
                stack.append((item, new, depth + 1))
            else:
                new = _copy_leaf(item)
            if isinstance(target, dict):
                target[key] = new
            else:
                target.append(new)
    return root


def _copy_leaf(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, bytes, datetime)):
        return value
    return copy.deepcopy(value)


def nesting_depth(value: Any, limit: int | None = None) -> int:
    """How many dicts/lists deep `value` is (a scalar: 0), without recursion; stops counting
    once past `limit` (the result is then `limit + 1`)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if limit is not None and depth > limit:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def timestamp(now: datetime) -> str:
    """RFC 3339, UTC, seconds precision: how Kubernetes writes metav1.Time."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_condition(ctype: str, status: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """A condition stamped `now`."""
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(now),
    }


def with_condition(status: dict[str, Any], cond: dict[str, Any]) -> dict[str, Any]:
    """A copy of `status` with `cond` in place of the condition of its type (appended if none),
    replaced whole, its lastTransitionTime included, as Kratix's status-writer does
    (K:work-creator/lib/status_updater.go `updateConditions`)."""
    out = copy_data(status)
    conditions = [c for c in out.get("conditions") or [] if isinstance(c, dict)]
    for i, c in enumerate(conditions):
        if c.get("type") == cond["type"]:
            conditions[i] = dict(cond)
            break
    else:
        conditions.append(dict(cond))
    out["conditions"] = conditions
    return out


def check_incoming(incoming: Any, wtype: WorkflowType) -> tuple[dict[str, Any], list[str]]:
    """Validate a pipeline's status.yaml document; returns (what to merge, warnings).

    §1.5b step 2: a top-level `kratix` key fails the pipeline. Step 4: a promise workflow
    may only set `message` (other keys are warned about and dropped, as the Promise CRD
    prunes them).
    """
    if incoming is None:
        return {}, []
    if not isinstance(incoming, dict):
        raise StatusError("/kratix/metadata/status.yaml: must be a mapping of status fields, "
                          f"got {type(incoming).__name__}")
    if nesting_depth(incoming, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH:
        raise StatusError(f"/kratix/metadata/status.yaml: {nesting_message()}")
    if "kratix" in incoming:
        raise StatusError("/kratix/metadata/status.yaml: 'kratix' is a kratix managed status field that "
                          "cannot be updated via workflows; remove update to 'kratix' from the "
                          "'/kratix/metadata/status.yaml' file")
    if wtype != "promise":
        return copy_data(incoming), []
    extra = sorted(str(k) for k in incoming if k != "message")
    warnings = []
    if extra:
        warnings.append(f"promise workflow status has unsupported keys: {', '.join(extra)} in status.yaml; "
                        "only 'message' can be updated in Promise status")
    return ({"message": incoming["message"]} if "message" in incoming else {}), warnings


def merge_statuses(existing: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """Kratix MergeStatuses (§1.5b step 3): shallow top-level merge, incoming wins per key;
    `conditions` merged by `type` when both sides are lists. Keys are never removed.

    Kratix's merged condition order is Go-map random; here it is existing order, then new types.
    """
    out = copy_data(existing)
    for key, value in incoming.items():
        old = out.get(key)
        if key == "conditions" and isinstance(old, list) and isinstance(value, list):
            merged: dict[str, Any] = {}
            for cond in [*old, *value]:
                if isinstance(cond, dict) and isinstance(cond.get("type"), str):
                    merged[cond["type"]] = copy_data(cond)
            out[key] = list(merged.values())
        else:
            out[key] = copy_data(value)
    return out


def mark_completed(status: dict[str, Any], wtype: WorkflowType, now: datetime) -> dict[str, Any]:
    """Kratix MarkAsCompleted (§1.5b step 5), applied after the last pipeline."""
    out = copy_data(status)
    if out.get("message") == PENDING:
        out["message"] = COMPLETED_MESSAGES[wtype]
    workflows = _workflows(out)
    if workflows is not None:
        workflows.pop("suspendedGeneration", None)
    return with_condition(out, new_condition(CONFIGURE_COMPLETED, "True", "PipelinesExecutedSuccessfully",
                                             "Pipelines completed", now))


def parse_workflow_control(doc: Any) -> WorkflowControl:
    """A workflow-control.yaml document (§1.5c); None means no file. Raises StatusError."""
    where = "/kratix/metadata/workflow-control.yaml"
    if doc is None:
        return WorkflowControl()
    if not isinstance(doc, dict):
        raise StatusError(f"{where}: must be a mapping with suspend, retryAfter, message")
    # Unknown keys are dropped, as Go's (non-strict) JSON decoding does.
    suspend = doc.get("suspend", False)
    if not isinstance(suspend, bool):
        raise StatusError(f"{where}: suspend must be true or false, got {suspend!r}")
    message = doc.get("message") or ""
    if not isinstance(message, str):
        raise StatusError(f"{where}: message must be a string")
    retry_after = doc.get("retryAfter")
    retry_after = "" if retry_after is None else retry_after
    if not isinstance(retry_after, str):
        raise StatusError(f"{where}: retryAfter must be a string such as \"10m\", got {retry_after!r}")
    seconds = None
    if retry_after != "":
        try:
            seconds = goduration.parse_seconds(retry_after)
        except goduration.DurationError as exc:
            raise StatusError(f"{where}: failed to parse retry duration: \"{retry_after}\" with error: {exc}") from None
    return WorkflowControl(suspend=suspend, retry_after_seconds=seconds, retry_after=str(retry_after),
                           message=message)


def has_workflow_status(status: dict[str, Any]) -> bool:
    """Whether `status.kratix.workflows.pipelines` is there (a workflow ran before)."""
    return bool((_workflows(status) or {}).get("pipelines"))


def init_workflow_status(status: dict[str, Any], pipelines: list[str], now: datetime) -> dict[str, Any]:
    """Controller side, when a configure workflow starts (§4.4): `workflows` counters and
    every pipeline Pending in `status.kratix.workflows.pipelines`."""
    out = copy_data(status)
    out["workflows"] = len(pipelines)
    out["workflowsSucceeded"] = 0
    out["workflowsFailed"] = 0
    _ensure_workflows(out)["pipelines"] = [{"name": n, "phase": "Pending", "lastTransitionTime": timestamp(now)}
                              for n in pipelines]
    return out


def mark_pipeline_starting(status: dict[str, Any], pipeline: str, now: datetime) -> dict[str, Any]:
    """Controller side, as each configure pipeline starts (§1.5b, `setPipelineStartingStatus`):
    message Pending, Reconciled Unknown/WorkflowPending, ConfigureWorkflowCompleted
    False/PipelinesInProgress, pipeline phase Running."""
    out = copy_data(status)
    out["message"] = PENDING
    out = with_condition(out, new_condition(CONFIGURE_COMPLETED, "False", "PipelinesInProgress",
                                            "Pipelines are still in progress", now))
    out = with_condition(out, new_condition(RECONCILED, "Unknown", WORKFLOW_PENDING_REASON, PENDING, now))
    return _set_phase(out, pipeline, "Running", now)


def mark_pipeline_succeeded(status: dict[str, Any], pipeline: str, now: datetime) -> dict[str, Any]:
    out = _set_phase(status, pipeline, "Succeeded", now)
    out["workflowsSucceeded"] = int(out.get("workflowsSucceeded") or 0) + 1
    return out


def mark_pipeline_failed(status: dict[str, Any], pipeline: str, action: WorkflowAction,
                         now: datetime) -> dict[str, Any]:
    """§4.4 (configure) and §4.5 (delete) failure conditions."""
    out = _set_phase(status, pipeline, "Failed", now)
    if action == "delete":
        return with_condition(out, new_condition(DELETE_COMPLETED, "False", DELETE_FAILED_REASON,
                                                 "The Delete Pipeline has failed", now))
    out["workflowsFailed"] = 1
    out = with_condition(out, new_condition(CONFIGURE_COMPLETED, "False", CONFIGURE_FAILED_REASON,
                                            f"A Configure Pipeline has failed: {pipeline}", now))
    return with_condition(out, new_condition(RECONCILED, "False", CONFIGURE_FAILED_REASON, "Failing", now))


def apply_workflow_control(status: dict[str, Any], pipeline: str, control: WorkflowControl,
                           action: WorkflowAction, now: datetime, generation: int = 1) -> dict[str, Any]:
    """Status-writer side of §1.5c: MarkPipelineAsSuspended or ClearPipelineSuspension,
    plus the controller's Reconciled=Unknown/WorkflowSuspended (and, for delete,
    DeleteWorkflowCompleted=False/DeleteWorkflowSuspended)."""
    out = copy_data(status)
    entry = _pipeline_entry(out, pipeline)
    if not control.suspends:
        if entry is not None:
            entry["phase"] = "Running"
            for key in ("message", "attempts", "nextRetryAt"):
                entry.pop(key, None)
        return out
    if entry is None:
        entry = {"name": pipeline}
        _ensure_workflows(out).setdefault("pipelines", []).append(entry)
    entry["phase"] = "Suspended"
    entry["lastTransitionTime"] = timestamp(now)
    if control.message:
        entry["message"] = control.message
    else:
        entry.pop("message", None)
    if control.retry_after_seconds is not None:
        entry["nextRetryAt"] = timestamp(now + timedelta(seconds=control.retry_after_seconds))
        entry["attempts"] = int(entry.get("attempts") or 0) + 1
    else:
        entry.pop("nextRetryAt", None)
        entry.pop("attempts", None)
    _ensure_workflows(out)["suspendedGeneration"] = generation
    out = with_condition(out, new_condition(RECONCILED, "Unknown", "WorkflowSuspended", "Suspended", now))
    if action == "delete":
        out = with_condition(out, new_condition(DELETE_COMPLETED, "False", DELETE_SUSPENDED_REASON,
                                                "The delete workflow is suspended", now))
    return out


def _workflows(status: dict[str, Any]) -> dict[str, Any] | None:
    kratix = status.get("kratix")
    if not isinstance(kratix, dict):
        return None
    workflows = kratix.get("workflows")
    return workflows if isinstance(workflows, dict) else None


def _ensure_workflows(status: dict[str, Any]) -> dict[str, Any]:
    """`status.kratix.workflows`, created (in place) if absent or malformed."""
    if not isinstance(status.get("kratix"), dict):
        status["kratix"] = {}
    if not isinstance(status["kratix"].get("workflows"), dict):
        status["kratix"]["workflows"] = {}
    return status["kratix"]["workflows"]


def _pipeline_entry(status: dict[str, Any], pipeline: str) -> dict[str, Any] | None:
    workflows = _workflows(status)
    for entry in (workflows or {}).get("pipelines") or []:
        if isinstance(entry, dict) and entry.get("name") == pipeline:
            return entry
    return None


def _set_phase(status: dict[str, Any], pipeline: str, phase: str, now: datetime) -> dict[str, Any]:
    out = copy_data(status)
    entry = _pipeline_entry(out, pipeline)
    if entry is not None:
        entry["phase"] = phase
        entry["lastTransitionTime"] = timestamp(now)
    return out
