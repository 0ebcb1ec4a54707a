"""What a reconcile records (docs/reconciler.md, "Bookkeeping"): each workflow outcome folded
into its object's record as it arrives, then — after the state-store writes — every placement
with the store commit that last changed its files, the Kratix-owned status that follows from
scheduling and writing (§2.4, §3.4, §4.4), and one bookkeeping commit.
"""

from __future__ import annotations

from typing import Any

from bot.kratix.conditions import delete_failed, destination_ready, works_outcome
from bot.model.objects import DESTINATION, PROMISE, Ref
from bot.model.records import PlacementRecord, ref_json
from bot.model.works import FileChanges, Placement
from bot.reconcile.context import RunContext
from bot.reconcile.placements import DELETED, Layout
from bot.reconcile.run import Outcome, fold_configure
from bot.reconcile.screen import invalid_json
from bot.reconcile.writes import StoreBatch, touches
from bot.state.bookkeeping import EVENT_TRAILER

MAX_INVALID_RECORDED = 500  # problems kept in meta.json for `promisebot status`


def fold_outcome(ctx: RunContext, outcome: Outcome) -> None:
    """A finished workflow into its object's record and Works (a deleted object is forgotten)."""
    task, rec = outcome.task, ctx.record(outcome.task.ref)
    if task.action == "configure":
        fold_configure(rec, outcome, ctx.owned(task.ref))
        if outcome.suspended:
            ctx.attention.add(task.ref)
    elif outcome.succeeded:
        ctx.forget(task.ref)
    else:
        rec.status = delete_failed(outcome.status or rec.status, outcome.suspended)
        rec.logs = outcome.logs
        ctx.attention.add(task.ref)


def _commit_of(batch: StoreBatch | None, changes: FileChanges | None) -> str | None:
    """The store commit of this run if it changed the placement's files."""
    result = batch.result if batch else None
    if result and result.revision and changes and touches(changes, result):
        return result.revision
    return None


def _placement_record(p: Placement, store: str, old: PlacementRecord | None, batch: StoreBatch | None,
                      layout: Layout) -> PlacementRecord:
    """A placement counts as written only once a store commit holds it: one whose write failed
    (or was refused) stays `pending` with the reason, and keeps the commit it last landed in."""
    changes = layout.changes_of(p)
    was_pending = bool(old and old.pending)
    commit = old.commit if old else None
    pending: str | None = None
    if p in layout.refused:
        pending = f"refused: {layout.refused[p]}"
    elif batch is not None and batch.error and (changes is not None or was_pending):
        pending = batch.error
    elif batch is not None and batch.result is not None:
        landed = _commit_of(batch, changes) or (batch.result.revision if was_pending else None)
        commit = landed or commit
    elif was_pending:
        pending = old.pending if old else None
    return PlacementRecord(p.work_key, p.group_id, p.destination, store, commit, p in layout.misplaced, pending)


def record_placements(ctx: RunContext, layout: Layout, dest_changes: dict[str, str],
                      batches: dict[str, StoreBatch]) -> None:
    """Placements, works and status of every touched object; each Destination's Ready (§3.4) and
    what it is now, as its files were written (the next run's `destination_changes` compares
    with it); a deleted Destination's record goes. A placement whose store write failed is
    pending (bot.reconcile.pending retries the write)."""
    for ref, placements in layout.placed.items():
        rec = ctx.record(ref)
        before = {p.placement: p for p in rec.placements}
        records = []
        for p in placements:
            target = ctx.target_now(p.destination)
            store = target.key if target else ""
            records.append(_placement_record(p, store, before.get(p), batches.get(store), layout))
        rec.placements = records
        rec.works = sorted(ctx.works[ref])
        unwritten = sorted({f"{p.store}: {p.pending}" for p in records if p.pending})
        rec.status = works_outcome(rec.status, layout.pending.get(ref, []),
                                   [str(p.placement) for p in records if p.misplaced], promise=ref.kind == PROMISE,
                                   unwritten=unwritten)
    for name, change in sorted(dest_changes.items()):
        rec = ctx.record(Ref(DESTINATION, name))
        if change == DELETED:
            ctx.deleted.add(rec.ref)
            continue
        target = ctx.target_now(name)
        if target is None:
            dest = ctx.after.destinations[name]
            rec.status = destination_ready(rec.status, False, "StateStoreNotFound",
                                           f"{dest.state_store_kind}/{dest.state_store_name}: not found")
            continue
        rec.body, rec.store_body, rec.labels = target.dest.body, target.store.body, target.dest.labels
        batch = batches.get(target.key)
        if name in layout.refused_destinations:
            rec.status = destination_ready(rec.status, False, "InvalidPath",
                                           f"Cannot write to State Store: {layout.refused_destinations[name]}")
        elif batch and batch.error:
            rec.status = destination_ready(rec.status, False, "StateStoreWriteFailed",
                                           f"Failed to write test documents to State Store: {batch.error}")
        elif target.dest.init_workloads:
            rec.status = destination_ready(rec.status, True, "TestDocumentsWritten",
                                           "Test documents written to State Store")
        else:
            rec.status = destination_ready(rec.status, True, "DestinationReady", "Destination is ready")


def commit_bookkeeping(ctx: RunContext, digests: dict[Ref, dict[str, str]], message: str,
                       store_commits: dict[str, str]) -> str | None:
    """Stage every changed record and Work and meta.json; one commit (None when nothing changed).
    `digests`: those of the touched objects' Works now (`Layout.digests`): a Work is stored when
    its digest differs from the recorded one, and the record keeps the new ones."""
    kept = {k for works in ctx.works.values() for k in works}
    for ref, works in ctx.works.items():  # only objects whose Works were loaded can change them
        rec = ctx.record(ref)
        old, new = rec.digests, digests.get(ref, rec.digests)
        for key, work in works.items():
            if old.get(key) != new.get(key):
                ctx.bk.put_work(work)
        for key in set(old) - kept:
            ctx.bk.delete_work(key)
        rec.digests = new
    for ref, rec in ctx.records.items():
        if ref in ctx.deleted:
            ctx.bk.delete(ref)
        elif ref.kind == DESTINATION or rec.status or rec.works or rec.cache_key is not None:
            ctx.bk.put(rec)
    meta: dict[str, Any] = {"revision": ctx.to_sha, "objectFiles": ctx.object_files(),
                            "attention": sorted(ref_json(r) for r in ctx.attention - ctx.deleted),
                            "invalidFiles": sorted(ctx.screening.files()),
                            "invalid": invalid_json(ctx.screening)[:MAX_INVALID_RECORDED]}
    if ctx.periodic:  # an explicit --all does not move the periodic clock: no commit when unchanged
        meta["lastFullReconcile"] = ctx.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.bk.set_meta(**meta)
    trailers = [(EVENT_TRAILER, f"reconcile {ctx.to_sha[:12]}")]
    trailers += [("Promisebot-Store", f"{store} {rev}") for store, rev in sorted(store_commits.items())]
    return ctx.bk.commit(message, trailers)
