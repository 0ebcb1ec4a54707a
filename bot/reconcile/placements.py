"""Where every Work of a reconcile goes and what that writes (contract §2, §3): scheduling
(sticky with the recorded placements), the files of each placement per filepath mode, removals
(placements no longer wanted, moved or deleted Destinations), canaries and aggregatedYAML files,
all gathered into one `WriteSet` (one write per state store).

It changes no record: it returns what it decided (`Layout`, the Works' digests included), and
the records are updated from that after the writes (bot.reconcile.recording).

An incremental run writes only the placements whose Work changed (or that are new, or whose
Destination moved). A full run writes every placement, canary and aggregated file again, so
files changed or deleted by hand in a store are restored (drift repair, §3.8); the stores skip
unchanged files, so an undrifted store gets no commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.kratix import layout
from bot.kratix.scheduling import schedule
from bot.model.objects import DESTINATION, Ref
from bot.model.records import PlacementRecord, work_digest
from bot.model.works import FileChanges, Placement, Work, WorkloadGroup
from bot.reconcile.context import RunContext
from bot.reconcile.writes import WriteSet

CREATED, MOVED, RELABELLED, DELETED, UNCHANGED = "created", "moved", "relabelled", "deleted", "unchanged"


@dataclass(slots=True)
class Layout:
    """The placements of one reconcile and what writing them changes."""

    placed: dict[Ref, list[Placement]] = field(default_factory=dict)  # new placements per touched object
    pending: dict[Ref, list[str]] = field(default_factory=dict)  # groups with no Destination (§2.4)
    misplaced: set[Placement] = field(default_factory=set)
    written: dict[Placement, FileChanges] = field(default_factory=dict)  # placements written this run
    refused: dict[Placement, str] = field(default_factory=dict)  # placements whose files a store cannot take
    refused_destinations: dict[str, str] = field(default_factory=dict)  # Destination -> why its paths are refused
    rendered: dict[str, FileChanges] = field(default_factory=dict)  # aggregated files rendered, by Destination
    digests: dict[Ref, dict[str, str]] = field(default_factory=dict)  # touched object -> its Works' digests, by key

    def changes_of(self, p: Placement) -> FileChanges | None:
        """What this run wrote for the placement (its aggregated file for aggregatedYAML)."""
        return self.written.get(p) or self.rendered.get(p.destination)


def destination_changes(ctx: RunContext) -> dict[str, str]:
    """name -> created | moved (spec or store changed) | relabelled | deleted | unchanged (§3.3-§3.5),
    against each Destination's record (as its files were last written)."""
    out: dict[str, str] = {}
    for name, dest in ctx.after.destinations.items():
        rec = ctx.record(dest.ref)
        store = ctx.after.state_stores.get(dest.state_store_ref)
        if not rec.body:
            out[name] = CREATED
        elif rec.body.get("spec") != dest.body.get("spec") or (
                store is not None and (rec.store_body or {}).get("spec") != store.body.get("spec")):
            out[name] = MOVED
        elif rec.labels != dest.labels:
            out[name] = RELABELLED
        else:
            out[name] = UNCHANGED
    for ref in ctx.bk.refs(DESTINATION):
        if ref.name not in ctx.after.destinations:
            out[ref.name] = DELETED
    return out


def schedule_and_layout(ctx: RunContext, writes: WriteSet, dest_changes: dict[str, str],
                        revisit: set[Ref] | frozenset[Ref] = frozenset()) -> Layout:
    """Decide every placement to write or remove and add it to `writes`. The objects laid out are
    those whose Works this run loaded (ran, planned, deleted), the recorded ones in `revisit`
    (their placements wait for a failed write: bot.reconcile.pending), and every live one in a
    full run or when a Destination changed."""
    for ref in sorted(revisit):
        if ctx.bk.has(ref):
            ctx.owned(ref)
    if ctx.full or any(c != UNCHANGED for c in dest_changes.values()):
        live = ctx.live_refs()  # any Work may be concerned
        ctx.load_records(live)
        for ref in live:
            ctx.owned(ref)
    touched = sorted(ctx.works)
    old_placements = [p for ref in touched for p in ctx.record(ref).placements]
    digests = {ref: {k: work_digest(w) for k, w in ctx.works[ref].items()} for ref in touched}
    changed_keys = {k for ref in touched for k, d in digests[ref].items() if ctx.record(ref).digests.get(k) != d}
    works = {w.key: w for ref in touched for w in ctx.works[ref].values()}
    owner = {key: ref for ref in touched for key in ctx.works[ref]}
    result = schedule(list(works.values()), ctx.after.destinations, [p.placement for p in old_placements])
    out = Layout(placed={ref: [] for ref in touched}, misplaced=result.misplaced, digests=digests)
    for p in result.placements:
        out.placed[owner[p.work_key]].append(p)
    for g in result.pending:
        out.pending.setdefault(owner[g.work_key], []).append(g.message)

    old_set = {p.placement for p in old_placements if not p.pending}  # a pending one is written again
    aggregated = {name for name, d in ctx.after.destinations.items() if ctx.full and d.filepath_mode == "aggregatedYAML"}
    for p in result.placements:
        target = ctx.target_now(p.destination)
        if target is None:
            continue
        unchanged = p in old_set and p.work_key not in changed_keys and dest_changes.get(p.destination) != MOVED
        if unchanged and not ctx.full:
            continue
        if target.aggregated:
            aggregated.add(p.destination)
        else:
            changes = writes.place(target, works[p.work_key], _group(works[p.work_key], p.group_id))
            if changes is None:
                out.refused[p] = writes.refused.get(p.destination, "refused")
            else:
                out.written[p] = changes
    aggregated |= _remove_unwanted(ctx, writes, old_placements, set(result.placements), dest_changes)
    _destinations(ctx, writes, dest_changes, aggregated, out)
    for p in result.placements:
        if p.destination in writes.refused and p not in out.written and p.destination not in out.rendered:
            out.refused.setdefault(p, writes.refused[p.destination])
    out.refused_destinations = dict(writes.refused)
    return out


def _group(work: Work, group_id: str) -> WorkloadGroup:
    return next(g for g in work.groups if g.id == group_id)


def _remove_unwanted(ctx: RunContext, writes: WriteSet, old_placements: list[PlacementRecord],
                     wanted: set[Placement], dest_changes: dict[str, str]) -> set[str]:
    """Remove the placements no longer wanted, and every placement from where a moved Destination
    was; returns the aggregatedYAML Destinations to render again."""
    aggregated: set[str] = set()
    for rec_p in old_placements:
        p = rec_p.placement
        change = dest_changes.get(p.destination, UNCHANGED)
        if change == DELETED or (p in wanted and change != MOVED):
            continue
        target = ctx.target_recorded(p.destination) if change == MOVED else ctx.target_now(p.destination)
        if target is None:
            continue
        if target.aggregated:
            aggregated.add(p.destination)
            continue
        work = ctx.bk.get_work(p.work_key)  # as last written
        if work is not None:
            writes.remove(target, work, p.group_id)
    return aggregated


def _destinations(ctx: RunContext, writes: WriteSet, dest_changes: dict[str, str], aggregated: set[str],
                  out: Layout) -> None:
    """Canaries (§3.3), aggregated files, and the cleanup of deleted Destinations (§3.5). (Their
    records, Ready status included, follow after the writes: bot.reconcile.recording.)"""
    for name, change in sorted(dest_changes.items()):
        if change == DELETED:
            target = ctx.target_recorded(name)
            if target is not None:
                writes.cleanup(target, _placements_on(ctx, name))
            continue
        target = ctx.target_now(name)
        if target is None:
            continue
        if change in (CREATED, MOVED) or ctx.full:
            writes.canaries(target)
        if change == MOVED and (old := ctx.target_recorded(name)) is not None:
            writes.move_canaries(old, target)
        if name in aggregated:
            rendered = writes.render_aggregated(target, _aggregated_items(ctx, name, out))
            if rendered is not None:
                out.rendered[name] = rendered


def _placements_on(ctx: RunContext, destination: str) -> list[tuple[Work, str]]:
    """Every recorded placement on a Destination, with its Work (as last written)."""
    out = []
    for ref in ctx.bk.refs():
        if ref.kind == DESTINATION:
            continue
        for p in ctx.record(ref).placements:
            work = ctx.bk.get_work(p.work_key) if p.destination == destination else None
            if work is not None:
                out.append((work, p.group_id))
    return out


def _aggregated_items(ctx: RunContext, destination: str, out: Layout) -> list[tuple[str, WorkloadGroup]]:
    """(placement name, group) of every placement now on an aggregatedYAML Destination."""
    items = []
    live = ctx.live_refs()
    ctx.load_records(r for r in live if r not in ctx.works)
    for ref in live:
        if ref in ctx.works:
            works, current = ctx.works[ref], out.placed.get(ref, [])
        else:
            current = [p.placement for p in ctx.record(ref).placements]
            works = ctx.bk.get_works([p.work_key for p in current if p.destination == destination])
        for p in current:
            work = works.get(p.work_key) if p.destination == destination else None
            group = next((g for g in work.groups if g.id == p.group_id), None) if work else None
            if work is not None and group is not None:
                items.append((layout.placement_name(work, p.group_id, destination), group))
    return items
