"""The reconcile engine: one event -> one plan -> pipeline runs -> one write per state store
-> bookkeeping (contract §4; docs/reconciler.md walks through it).

    platform at `to` (+ at `from` for an incremental run) + bookkeeping
      (bot.reconcile.context, partial for incremental runs: bot.reconcile.scope)
      -> which workflows run (bot.reconcile.phases; cache keys: bot.reconcile.decide, §1.7/§4.7)
      -> phase 1: Promise configure / delete pipelines (§4.1, §4.3)
      -> phase 2: request configure / delete pipelines of available Promises (§4.4, §4.5)
         (run in parallel by bot.reconcile.run, folded into records by bot.reconcile.recording)
      -> Works (new from runs, the rest from bookkeeping) -> scheduling (sticky, §2)
      -> layout (bot.reconcile.placements) -> ONE apply per state store (§3, bot.reconcile.writes)
      -> bookkeeping, AFTER the store commits (bot.reconcile.recording).

A reconcile with `dry_run` (what `promisebot plan` does) runs the pipelines to know their
outputs but writes nothing: it returns each store's diff. A compound Promise's outputs that
land in the platform repo itself (a GitStateStore pointing at it) are reconciled again in the
same call, until nothing changes (§4.6).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.model.objects import Ref
from bot.platform.loader import load_platform
from bot.platform.sources import GitTreeSource
from bot.reconcile.context import ReconcileError, RunContext, rev_parse
from bot.reconcile.decide import Task
from bot.reconcile.pending import load_pending, replay, settle, waiting_refs
from bot.reconcile.phases import plan_promises, plan_requests
from bot.reconcile.placements import destination_changes, schedule_and_layout
from bot.reconcile.recording import commit_bookkeeping, fold_outcome, record_placements
from bot.reconcile.run import Outcome, run_tasks
from bot.reconcile.screen import invalid_json
from bot.reconcile.writes import StoreBatch, WriteSet, store_key
from bot.secrets import SecretResolver
from bot.state.bookkeeping import EVENT_TRAILER, run_lock
from runners.base import Runner

__all__ = ["AFTER_PIPELINES", "AFTER_STORE_WRITE", "MAX_COMPOUND_ROUNDS", "NO_HOOKS", "ReconcileError",
           "ReconcileReport", "RunHooks", "reconcile"]

MAX_COMPOUND_ROUNDS = 5
Progress = Callable[[str, int, int], None]

AFTER_PIPELINES = "after-pipelines"  # the pipelines ran; nothing is written yet
AFTER_STORE_WRITE = "after-store-write"  # the state stores are written; bookkeeping is not


def _go_on(checkpoint: str) -> None:
    """A run goes straight on at every checkpoint."""


@dataclass(frozen=True, slots=True)
class RunHooks:
    """Where code outside the engine may step into a run; the default does nothing.

    `checkpoint(name)` is called at each point crash safety depends on (docs/reconciler.md,
    "Crash safety"): `AFTER_PIPELINES` and `AFTER_STORE_WRITE`. tests/crash_cli.py runs the CLI
    with a hook that kills the process there.
    """

    checkpoint: Callable[[str], None] = _go_on


NO_HOOKS = RunHooks()


@dataclass(slots=True)
class ReconcileReport:
    from_rev: str | None
    to_rev: str
    full: bool
    outcomes: list[Outcome] = field(default_factory=list)
    batches: list[StoreBatch] = field(default_factory=list)
    bookkeeping_commit: str | None = None
    rounds: int = 1
    # time.monotonic() when the state-store writes of the last round were done (before the
    # bookkeeping commit): what "event to state-store commit" latency is measured to.
    stores_written_at: float | None = None
    warnings: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # placements whose files no store can take
    invalid: list[dict[str, Any]] = field(default_factory=list)  # what validation rejected (not acted on)

    @property
    def commits(self) -> dict[str, str]:
        return {store_key(b.store): b.result.revision for b in self.batches if b.result and b.result.revision}

    @property
    def changed(self) -> bool:
        return any(b.diff or (b.result and b.result.revision) for b in self.batches)

    @property
    def errors(self) -> list[str]:
        return [f"{store_key(b.store)}: {b.error}" for b in self.batches if b.error]


def reconcile(
    repo: Path,
    *,
    runner: Runner,
    from_rev: str | None = None,
    to_rev: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    hooks: RunHooks = NO_HOOKS,
    trailers: Mapping[str, str] | None = None,
    rerun: Collection[Ref] = (),
) -> ReconcileReport:
    """Reconcile the platform repo at `to_rev` (default HEAD). See the module docstring.
    `trailers` are added to every state-store commit (the bot names the change, its author and
    approvers there). `rerun`: objects whose configure workflow runs again from the start, as
    if they carried the manual-reconciliation label (the bot's `rerun`, with no commit)."""
    repo = Path(repo)
    extra = dict(trailers or {})
    with nullcontext() if dry_run else run_lock(repo):
        return _reconcile(repo, runner, from_rev, to_rev, full, dry_run, progress, hooks, extra, frozenset(rerun))


def _reconcile(repo: Path, runner: Runner, from_rev: str | None, to_rev: str | None, full: bool, dry_run: bool,
               progress: Progress | None, hooks: RunHooks, trailers: dict[str, str],
               rerun: frozenset[Ref]) -> ReconcileReport:
    ctx = RunContext.open(repo, from_rev, to_rev or "HEAD", full, rerun=rerun)
    report = _run(ctx, runner, dry_run, progress, hooks, trailers)
    # Compound Promises (§4.6): outputs committed into the platform repo itself are platform
    # input; reconcile the new HEAD until a round changes nothing more.
    while not dry_run and to_rev is None and report.commits and report.rounds < MAX_COMPOUND_ROUNDS:
        head = rev_parse(repo, "HEAD")
        if head == report.to_rev:
            break
        nxt = _run(RunContext.open(repo, report.to_rev, head, False), runner, dry_run, progress, hooks, trailers)
        nxt.outcomes = report.outcomes + nxt.outcomes
        nxt.batches = report.batches + nxt.batches
        nxt.invalid = report.invalid + [p for p in nxt.invalid if p not in report.invalid]
        nxt.rounds = report.rounds + 1
        nxt.refused = report.refused + nxt.refused
        nxt.warnings = report.warnings + [w for w in nxt.warnings if w not in report.warnings]
        report = nxt
    return report


def _run(ctx: RunContext, runner: Runner, dry_run: bool, progress: Progress | None,
         hooks: RunHooks, trailers: dict[str, str]) -> ReconcileReport:
    """One reconcile of one platform revision: phases, writes, bookkeeping, in this order. Each
    step takes what it needs from the earlier ones as arguments; besides, the phases and the
    outcomes update the run's records and Works (`ctx`), which the layout reads and the
    recording steps write back (bot.reconcile.context)."""
    candidates = ctx.candidates()
    promises = plan_promises(ctx)
    outcomes = _execute(ctx, runner, promises.tasks, progress)
    promises.absorb(outcomes)
    outcomes += _execute(ctx, runner, plan_requests(ctx, candidates, promises), progress)
    hooks.checkpoint(AFTER_PIPELINES)
    dest_changes = destination_changes(ctx)
    pending = load_pending(ctx)
    writes = WriteSet(ctx.open_store)
    layout = schedule_and_layout(ctx, writes, dest_changes, revisit=waiting_refs(pending))
    replay(ctx, writes, pending)
    runs = len(outcomes)
    message = f"promisebot: reconcile platform {ctx.to_sha[:12]} ({runs} workflow run{'s' * (runs != 1)})"
    writes.run(message, {EVENT_TRAILER: f"reconcile {ctx.to_sha[:12]}", **trailers}, dry_run=dry_run)
    report = ReconcileReport(ctx.from_sha, ctx.to_sha, ctx.full, outcomes, list(writes.batches.values()),
                             stores_written_at=time.monotonic(), invalid=invalid_json(ctx.screening),
                             warnings=ctx.bk.warnings,
                             refused=[f"{p.destination}: {p.work_key}: {why}" for p, why in sorted(layout.refused.items())])
    if dry_run:
        return report
    hooks.checkpoint(AFTER_STORE_WRITE)
    record_placements(ctx, layout, dest_changes, writes.batches)
    settle(ctx, layout, writes.batches)
    report.bookkeeping_commit = commit_bookkeeping(ctx, layout.digests, message, report.commits)
    return report


def _manifests(ctx: RunContext, tasks: list[Task]) -> list[dict[str, Any]]:
    """The platform's other Kubernetes objects (ConfigMaps...), for runs whose pipelines' rbac
    grants them through the run's Kubernetes API: the whole tree's, also in an incremental run
    (whose snapshot holds only the files that changed); none when no pipeline is granted any."""
    if not any(p.rbac and p.rbac.permissions for t in tasks for p in t.promise.pipelines(t.wtype, t.action)):
        return []
    if ctx.only is None:
        return ctx.after.manifests
    return load_platform(GitTreeSource(ctx.repo, ctx.to_sha), ctx.settings).manifests


def _execute(ctx: RunContext, runner: Runner, tasks: list[Task], progress: Progress | None) -> list[Outcome]:
    """Run the tasks (bounded in parallel) and fold each outcome into its record."""
    if not tasks:
        return []
    total, done, lock = len(tasks), 0, threading.Lock()

    def on_done(outcome: Outcome) -> None:
        nonlocal done
        with lock:
            done += 1
            if progress:
                progress(outcome.task.label, done, total)

    secrets_dir = ctx.settings.secrets_dir
    outcomes = run_tasks(runner, ctx.settings.runner, [(t, ctx.record(t.ref).status) for t in tasks], on_done,
                         manifests=_manifests(ctx, tasks),
                         secrets=SecretResolver(Path(secrets_dir) if secrets_dir else None, os.environ))
    for outcome in outcomes:
        fold_outcome(ctx, outcome)
    return outcomes
