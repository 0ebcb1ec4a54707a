"""What ran and what needs attention, as plan, reconcile and the bot's comments show it: every
workflow run, every workflow that failed (pipeline, container, why, and the last lines of its
log) and every object validation rejected (file, line, field), so nobody has to dig into
`promisebot status` to learn why."""

from __future__ import annotations

from typing import Any

from bot.reconcile.engine import ReconcileReport
from bot.reconcile.run import Outcome
from runners.base import failure_place, log_tail_lines

LOG_TAIL_LINES = 10


def failures(outcome: Outcome, tail: int = LOG_TAIL_LINES) -> list[dict[str, Any]]:
    """The failed containers of a workflow run: pipeline, container, exit code, reason, log tail."""
    out = []
    for entry in outcome.logs:
        lines = str(entry.get("log") or "").rstrip("\n").splitlines()
        out.append({"pipeline": entry.get("pipeline") or outcome.failed_pipeline or "", "container": entry.get("container") or "",
                    "exitCode": entry.get("exitCode"), "reason": entry.get("reason") or outcome.error or "failed",
                    "logTail": lines[-tail:]})
    if not out and outcome.state == "failed":
        out.append({"pipeline": outcome.failed_pipeline or "", "container": "", "exitCode": None,
                    "reason": outcome.error or "failed", "logTail": []})
    return out


def runs_json(report: ReconcileReport) -> list[dict[str, Any]]:
    """One entry per workflow run: object, workflow, why it ran, result, failed pipeline, failures."""
    return [{"object": str(o.task.ref), "workflow": f"{o.task.wtype}.{o.task.action}", "reason": o.task.reason,
             "result": o.state, "failedPipeline": o.failed_pipeline, "failures": failures(o)}
            for o in report.outcomes]


def runs_text(report: ReconcileReport) -> list[str]:
    """One line per workflow run; under a failed one, why and its last log lines."""
    lines = []
    for outcome, r in zip(report.outcomes, runs_json(report), strict=True):
        extra = f" at {r['failedPipeline']}" if r["failedPipeline"] else ""
        lines.append(f"  {r['workflow']:<20} {r['object']}: {r['result']}{extra} ({r['reason']})")
        if outcome.state == "failed":
            lines += failure_text(outcome)
    return lines


def failure_text(outcome: Outcome) -> list[str]:
    """Indented lines under a failed run in the text output."""
    lines = []
    for f in failures(outcome):
        lines.append(f"      {failure_place(f['pipeline'], f['container'])}: {f['reason']}")
        lines += log_tail_lines(f["logTail"], "      ")
    return lines


def invalid_text(report: ReconcileReport) -> list[str]:
    if not report.invalid:
        return []
    out = [f"invalid, not acted on ({len(report.invalid)} problem{'s' * (len(report.invalid) != 1)}; "
           "promisebot validate shows them all):"]
    for p in report.invalid:
        where = f"{p['file']}:{p['line']}"
        field = f" {p['field']}:" if p["field"] else ""
        obj = f" [{p['object']}]" if p.get("object") else ""
        out.append(f"  {where}:{field} {p['message']}{obj}")
    return out


def needs_attention(report: ReconcileReport) -> bool:
    """A workflow failed, a store could not be written, or something is invalid."""
    return bool(report.errors or report.invalid or report.refused or any(o.state == "failed" for o in report.outcomes))


def refused_text(report: ReconcileReport) -> list[str]:
    return [f"refused (not written): {line}" for line in report.refused]
