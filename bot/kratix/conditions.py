"""Kratix-compatible status written by the reconciler (contract §6, §1.5b, §4.4, §4.6, §3.4),
and the condition types and shared reasons, spelled once for this module and
bot.kratix.status_merge.

The pipelines' own status (`status.yaml`, merged by runners/workflow.py) is kept; these
helpers set the conditions and messages Kratix's controllers own: waiting for the Promise,
requirements not installed, paused, failed, works pending/misplaced, reconciled. They set a
condition as meta.SetStatusCondition does (`set_status_condition`: in place, lastTransitionTime
kept while the status does not change), where the status-writer side in status_merge replaces
it whole with a new time (`status_merge.with_condition`), as Kratix's status-writer does.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.model.records import now_iso

CONFIGURE_COMPLETED = "ConfigureWorkflowCompleted"
DELETE_COMPLETED = "DeleteWorkflowCompleted"
WORKS_SUCCEEDED = "WorksSucceeded"
RECONCILED = "Reconciled"
PROMISE_AVAILABLE = "PromiseAvailable"
AVAILABLE = "Available"
REQUIREMENTS_FULFILLED = "RequirementsFulfilled"
READY = "Ready"
# Reasons and messages that both this module and bot.kratix.status_merge (or the reconciler) set.
CONFIGURE_FAILED_REASON = "ConfigureWorkflowFailed"
DELETE_FAILED_REASON = "DeleteWorkflowFailed"
DELETE_SUSPENDED_REASON = "DeleteWorkflowSuspended"
WORKFLOW_PENDING_REASON = "WorkflowPending"
PAUSED_REASON = "PausedReconciliation"
PENDING = "Pending"  # status.message (and the Reconciled message) while a workflow is to run


def set_status_condition(status: dict[str, Any], ctype: str, value: str, reason: str, message: str) -> None:
    """Upsert one condition by type in `status` itself (Kratix's meta.SetStatusCondition):
    lastTransitionTime changes only when the condition's status changes; conditions sorted by type."""
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    for i, c in enumerate(conditions):
        if c.get("type") == ctype:
            stamp = c.get("lastTransitionTime") if c.get("status") == value else now_iso()
            conditions[i] = {"type": ctype, "status": value, "reason": reason, "message": message,
                             "lastTransitionTime": stamp}
            break
    else:
        conditions.append({"type": ctype, "status": value, "reason": reason, "message": message,
                           "lastTransitionTime": now_iso()})
    status["conditions"] = sorted(conditions, key=lambda c: c["type"])


def find_condition(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    """The condition of type `ctype` in `status`, or None."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def configure_succeeded(status: dict[str, Any]) -> bool:
    c = find_condition(status, CONFIGURE_COMPLETED)
    return bool(c and c.get("status") == "True")


def waiting_for_promise(status: dict[str, Any], promise: str, why: str) -> dict[str, Any]:
    """A request whose Promise is not available yet: no workflow runs (§4.1 step 7, §4.4)."""
    out = copy.deepcopy(status)
    out["message"] = PENDING
    set_status_condition(out, PROMISE_AVAILABLE, "False", "PromiseNotAvailable",
                         f"Waiting for Promise {promise}: {why}")
    set_status_condition(out, RECONCILED, "Unknown", WORKFLOW_PENDING_REASON,
                         f"Waiting for Promise {promise}")
    return out


def requirements_not_installed(status: dict[str, Any]) -> dict[str, Any]:
    """A request of a Promise whose requiredPromises are not fulfilled (§4.4, §4.6)."""
    out = copy.deepcopy(status)
    out["message"] = PENDING
    set_status_condition(out, PROMISE_AVAILABLE, "False", "PromiseRequirementsNotInstalled",
                         "Promise Requirements are not installed")
    set_status_condition(out, RECONCILED, "Unknown", WORKFLOW_PENDING_REASON, PENDING)
    return out


def paused(status: dict[str, Any]) -> dict[str, Any]:
    """A Promise or request with `kratix.io/paused: "true"` (or whose Promise has it): no new
    workflow (§4.1 step 1, §4.4)."""
    out = copy.deepcopy(status)
    set_status_condition(out, RECONCILED, "Unknown", PAUSED_REASON, "Paused")
    return out


def unpaused(status: dict[str, Any]) -> dict[str, Any]:
    """An unpaused object with no configure workflow to run again: the Paused condition goes
    (one that runs gets its Reconciled condition from the run)."""
    out = copy.deepcopy(status)
    conditions = [c for c in out.get("conditions") or []
                  if not (c.get("type") == RECONCILED and c.get("reason") == PAUSED_REASON)]
    if conditions:
        out["conditions"] = conditions
    else:
        out.pop("conditions", None)
    return out


def promise_requirements(status: dict[str, Any], states: list[dict[str, str]]) -> dict[str, Any]:
    """`status.requiredPromises` and RequirementsFulfilled / Available (§4.6)."""
    out = copy.deepcopy(status)
    fulfilled = all(s["state"] == "Requirement installed" for s in states)
    if states:
        out["requiredPromises"] = states
        if fulfilled:
            set_status_condition(out, REQUIREMENTS_FULFILLED, "True", "RequirementsInstalled",
                                 "Requirements fulfilled")
        else:
            set_status_condition(out, REQUIREMENTS_FULFILLED, "False", "RequirementsNotInstalled",
                                 "Requirements not fulfilled")
    else:
        out.pop("requiredPromises", None)
    if not fulfilled:
        out["status"] = "Unavailable"
        set_status_condition(out, AVAILABLE, "False", "RequirementsNotInstalled",
                             "Requirements not fulfilled")
    return out


def works_outcome(status: dict[str, Any], pending: list[str], misplaced: list[str], *,
                  promise: bool, unwritten: list[str] | None = None) -> dict[str, Any]:
    """WorksSucceeded / Reconciled from scheduling (§2.4, §4.4 `getWorksStatus`), applied when the
    configure workflow has succeeded. `unwritten`: "<store>: <error>" of placements whose state
    store write failed (retried by the next run; Kratix's WorkPlacement write failing)."""
    out = copy.deepcopy(status)
    if not configure_succeeded(out):
        return out
    if unwritten:
        msg = "Some works associated with this resource are not written to their State Store yet: "
        set_status_condition(out, WORKS_SUCCEEDED, "Unknown", "StateStoreWritePending",
                             msg + "; ".join(unwritten))
        set_status_condition(out, RECONCILED, "Unknown", "WorksPending", PENDING)
    elif pending:
        msg = "Some works associated with this resource are not ready: " + "; ".join(pending)
        set_status_condition(out, WORKS_SUCCEEDED, "Unknown", "WorksPending", msg)
        set_status_condition(out, RECONCILED, "Unknown", "WorksPending", PENDING)
    elif misplaced:
        msg = "Some works associated with this resource are misplaced: "
        set_status_condition(out, WORKS_SUCCEEDED, "False", "WorksMisplaced", msg + "; ".join(misplaced))
        set_status_condition(out, RECONCILED, "True", "Reconciled", "Reconciled")
    else:
        set_status_condition(out, WORKS_SUCCEEDED, "True", "WorksSucceeded",
                             "All works associated with this resource are ready")
        set_status_condition(out, RECONCILED, "True", "Reconciled", "Reconciled")
    if promise:
        out["status"] = "Available"
        set_status_condition(out, AVAILABLE, "True", "PromiseAvailable", "Ready to fulfil resource requests")
    else:
        set_status_condition(out, PROMISE_AVAILABLE, "True", "PromiseAvailable", "Promise is available")
    return out


def delete_failed(status: dict[str, Any], suspended: bool) -> dict[str, Any]:
    """A delete pipeline that failed or suspended: the object and its files stay (§4.3, §4.5)."""
    out = copy.deepcopy(status)
    if suspended:
        set_status_condition(out, DELETE_COMPLETED, "False", DELETE_SUSPENDED_REASON, "Suspended")
    else:
        set_status_condition(out, DELETE_COMPLETED, "False", DELETE_FAILED_REASON,
                             "The Delete Pipeline has failed")
    return out


def destination_ready(status: dict[str, Any], ready: bool, reason: str, message: str) -> dict[str, Any]:
    """A Destination's Ready condition (§3.4)."""
    out = copy.deepcopy(status)
    set_status_condition(out, READY, "True" if ready else "False", reason, message)
    return out


def invalid(status: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """A request its Promise's API rejects (Kratix's API server would refuse it): no workflow
    runs and its previous outputs stay."""
    out = copy.deepcopy(status)
    out["message"] = "Invalid: " + "; ".join(problems)
    set_status_condition(out, RECONCILED, "False", "ValidationFailed", "; ".join(problems))
    return out


def valid_again(status: dict[str, Any]) -> dict[str, Any]:
    """An object valid again: the ValidationFailed condition and the Invalid message go."""
    out = copy.deepcopy(status)
    if str(out.get("message", "")).startswith("Invalid: "):
        out.pop("message")
    conditions = [c for c in out.get("conditions") or [] if c.get("reason") != "ValidationFailed"]
    if conditions:
        out["conditions"] = conditions
    else:
        out.pop("conditions", None)
    return out
