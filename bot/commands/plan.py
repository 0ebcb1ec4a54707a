"""`promisebot plan [--platform PATH] [--from REV] [--to REV | --all] [--output json]`: what a
reconcile would change in each state store and Destination, as a unified diff, and which
pipelines would run. Pipelines do run (to know their outputs); nothing is written to any
state store or to bookkeeping.

Exit codes (like `terraform plan -detailed-exitcode`): 0 no changes, 2 changes, 1 something
needs attention (a workflow failed, an object is invalid, a store cannot be read) or the plan
could not be made.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.commands.reconcile import run_reconcile
from bot.reconcile.engine import ReconcileReport
from bot.reconcile.writes import store_key
from bot.report.diffs import by_destination, counts, destination_of, unified
from bot.report.outcomes import invalid_text, needs_attention, refused_text, runs_json, runs_text

EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def plan_json(report: ReconcileReport) -> dict[str, Any]:
    stores = []
    for batch in report.batches:
        stores.append({
            "store": store_key(batch.store),
            "error": batch.error,
            "files": [{"path": d.path, "action": d.action, "destination": destination_of(batch, d.path),
                       "diff": unified(d)} for d in batch.diff],
        })
    return {"from": report.from_rev, "to": report.to_rev, "changes": report.changed,
            "runs": runs_json(report), "stores": stores, "invalid": report.invalid, "warnings": report.warnings,
            "needsAttention": needs_attention(report)}


def render(report: ReconcileReport) -> str:
    out = [f"plan for {report.to_rev[:12]}" + (f" (from {report.from_rev[:12]})" if report.from_rev else "")]
    runs = runs_json(report)
    out.append(f"\npipelines that would run: {len(runs)}")
    out += runs_text(report)
    if report.invalid or report.refused:
        out += ["", *invalid_text(report), *refused_text(report)]
    for batch in report.batches:
        if not batch.diff and not batch.error:
            continue
        out.append(f"\nstate store {store_key(batch.store)}")
        if batch.error:
            out.append(f"  error: {batch.error}")
        if batch.pending:
            out.append(f"  a write that failed since {batch.pending.since} is included "
                       f"({batch.pending.attempts} attempt{'s' * (batch.pending.attempts != 1)}): {batch.pending.error}")
        for dest, diffs in by_destination(batch).items():
            n = counts(diffs)
            out.append(f"  destination {dest}: {n['add']} added, {n['modify']} changed, {n['remove']} removed")
            for d in diffs:
                out.append(f"    {d.action:<6} {d.path}")
            for d in diffs:
                out.append(unified(d).rstrip("\n"))
    if not report.changed:
        out.append("\nno changes")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    report = run_reconcile(args, dry_run=True)
    if report is None:
        return EXIT_ERROR
    print(json.dumps(plan_json(report), indent=2) if args.output == "json" else render(report))
    if needs_attention(report):
        return EXIT_ERROR
    return EXIT_CHANGES if report.changed else EXIT_NO_CHANGES
