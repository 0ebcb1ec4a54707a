"""Failed state-store writes are never forgotten (docs/reconciler.md, "Failed writes").

A write that fails (push rejected, remote unreachable, bad credentials, a bucket refusing an
upload) leaves its whole change set on the bookkeeping branch as a `PendingWrite`. Every later
run (and plan) puts that change set first in the store's batch, before its own changes (which
were decided as if it had landed), so the store converges to what the records say as soon as
a write gets through; the placements it concerns stay marked `pending` with the error, and
their objects are not Reconciled, until then.
"""

from __future__ import annotations

from bot.model.objects import Ref
from bot.model.records import PendingWrite, now_iso
from bot.reconcile.context import RunContext
from bot.reconcile.placements import Layout
from bot.reconcile.writes import StoreBatch, WriteSet


def load_pending(ctx: RunContext) -> list[PendingWrite]:
    """The failed writes to retry. The objects they concern (`waiting_refs`) are laid out again
    in this run (bot.reconcile.placements `schedule_and_layout(revisit=...)`)."""
    return ctx.bk.pending_writes()


def waiting_refs(pending: list[PendingWrite]) -> set[Ref]:
    """The objects whose placements wait for one of the failed writes."""
    return {ref for entry in pending for ref in entry.refs}


def replay(ctx: RunContext, writes: WriteSet, pending: list[PendingWrite]) -> None:
    """Each failed write goes first in its store's batch (the store as it is now, else as it was)."""
    for entry in pending:
        kind, _, name = entry.store_key.partition("/")
        store = ctx.after.state_stores.get(Ref(kind, name))
        if store is None:
            store = next(iter(ctx.rebuild(entry.store).state_stores.values()), None)
        if store is not None:
            writes.replay(entry, store)


def _refs_in(layout: Layout, ctx: RunContext, store_key: str) -> set[Ref]:
    """The objects with a placement (this run's or recorded) in the store."""
    out = set()
    for ref, placements in layout.placed.items():
        dests = {p.destination for p in placements} | {p.destination for p in ctx.record(ref).placements}
        if any((t := ctx.target_now(d)) and t.key == store_key for d in dests):
            out.add(ref)
    return out


def settle(ctx: RunContext, layout: Layout, batches: dict[str, StoreBatch]) -> None:
    """After the writes: a failed batch becomes (or stays) pending; a landed one is cleared."""
    for key, batch in batches.items():
        old = batch.pending
        if batch.error:
            refs = _refs_in(layout, ctx, key) | set(old.refs if old else [])
            ctx.bk.put_pending(PendingWrite(
                key, batch.store.body, batch.changes, batch.error, since=old.since if old else now_iso(),
                attempts=(old.attempts + 1) if old else 1, refs=sorted(r for r in refs if r not in ctx.deleted)))
        elif old is not None:
            ctx.bk.delete_pending(key)
