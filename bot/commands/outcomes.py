"""How plan and reconcile print what needs attention: every workflow that failed (pipeline,
container, why, and the last lines of its log) and every object validation rejected (file,
line, field), so nobody has to dig into `promisebot status` to learn why."""

from __future__ import annotations

from typing import Any

from bot.reconcile.engine import ReconcileReport
from bot.reconcile.run import Outcome

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


def failure_text(outcome: Outcome) -> list[str]:
    """Indented lines under a failed run in the text output."""
    lines = []
    for f in failures(outcome):
        where = f"pipeline {f['pipeline']}" + (f", container {f['container']}" if f["container"] else "")
        lines.append(f"      {where}: {f['reason']}")
        if f["logTail"]:
            lines.append(f"      last {len(f['logTail'])} log line{'s' * (len(f['logTail']) != 1)}:")
            lines += [f"        | {line}" for line in f["logTail"]]
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
