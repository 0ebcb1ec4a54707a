"""`promisebot reconcile [--platform PATH] [--from REV --to REV | --all] [--output json]`:
run the pipelines and write their outputs, one commit per state store (docs/reconciler.md).

Exit codes: 0 done, everything reconciled; 1 something needs attention: a workflow failed, a
state store could not be written (the write is retried by the next run), an object is invalid
(reported and not acted on), or the reconcile could not start. Everything that could be done
was done either way: one failing object never stops the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.commands import platform_repo
from bot.reconcile.engine import ReconcileReport, reconcile
from bot.reconcile.writes import store_key
from bot.report.outcomes import invalid_text, needs_attention, refused_text, runs_json, runs_text
from runners.docker import DockerRunner

EXIT_OK, EXIT_ERROR = 0, 1


@contextmanager
def progress_display() -> Iterator[Any]:
    """A rich progress bar of workflow runs on stderr, only when it is a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task("pipelines", total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label[:60], completed=done, total=total)

        yield update


def run_reconcile(args: argparse.Namespace, *, dry_run: bool) -> ReconcileReport | None:
    """The reconcile (or plan, with `dry_run`) the arguments ask for; None when there is no platform
    repo (the reason printed on stderr). Any PromisebotError is reported by `bot.cli.main`."""
    command = "plan" if dry_run else "reconcile"
    repo = platform_repo(args.platform, command)
    if repo is None:
        return None
    runner = DockerRunner()
    try:
        with progress_display() as progress:
            return reconcile(repo, runner=runner, from_rev=args.from_rev, to_rev=args.to_rev,
                             full=args.all, dry_run=dry_run, progress=progress)
    finally:
        runner.close()


def run(args: argparse.Namespace) -> int:
    report = run_reconcile(args, dry_run=False)
    if report is None:
        return EXIT_ERROR
    if args.output == "json":
        print(json.dumps({"from": report.from_rev, "to": report.to_rev, "full": report.full, "runs": runs_json(report),
                          "commits": report.commits, "bookkeeping": report.bookkeeping_commit,
                          "errors": report.errors, "invalid": report.invalid, "refused": report.refused, "warnings": report.warnings,
                          "needsAttention": needs_attention(report)}, indent=2))
    else:
        print(f"reconciled {report.to_rev[:12]}" + (f" (from {report.from_rev[:12]})" if report.from_rev else "")
              + (" [full]" if report.full else ""))
        print("\n".join(runs_text(report) + invalid_text(report) + refused_text(report)) or "  no workflow ran")
        for batch in report.batches:
            if batch.result and batch.result.revision:
                res, revision = batch.result, batch.result.revision
                print(f"  {store_key(batch.store)}: commit {revision[:12]} "
                      f"({len(res.added)} added, {len(res.modified)} modified, {len(res.removed)} removed)")
        if not report.commits:
            print("  no state store changes")
        for err in report.errors:
            print(f"error: {err} (retried by the next reconcile)", file=sys.stderr)
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return EXIT_ERROR if needs_attention(report) else EXIT_OK
