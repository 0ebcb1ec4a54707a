"""Which Destination(s) each workload group goes to (contract §2). Pure: no I/O.

Public API (called by the reconciler):

    resolve_selectors(group: WorkloadGroup) -> dict[str, str]
    matching_destinations(selectors: Mapping[str, str], destinations: Iterable[Destination])
        -> list[Destination]
    schedule(works: Sequence[Work], destinations: Mapping[str, Destination],
             existing: Iterable[Placement]) -> Schedule

Rules, as Kratix's scheduler applies them (K:internal/controller/scheduler.go):

- §2.1 a group's selectors are merged lowest -> highest priority: resource-workflow,
  promise-workflow, promise; on a key conflict the Promise's `spec.destinationSelectors` win.
- §2.2 empty selectors match every Destination except `strictMatchLabels: true` ones that have
  labels; non-empty selectors match Destinations carrying every key=value (subset match).
  Destinations labelled `kratix.io/dry-run: "true"` never receive these (normal) Works.
- §2.3 a dependency Work (`Work.is_dependency`) goes to every matching Destination. Scheduling
  is recomputed on every reconcile, so Destinations added or relabelled later are picked up.
  Existing placements on Destinations that no longer match are kept, reported misplaced and
  still updated.
- §2.3 each workload group of a resource Work goes to exactly one Destination and stays there
  (sticky): an existing placement is kept even when its Destination no longer matches
  (misplaced, still updated). Only when that Destination no longer exists is the group placed
  again.
- §2.4 a group with nowhere to go is pending, with a message naming it and the labels it needs;
  the Work's other groups are still placed.

Deliberate deviation: Kratix picks a resource group's Destination with `rand.Intn`. Here the
pick is rendezvous (highest-random-weight) hashing: each candidate scores
sha256("<promise>/<namespace>/<name>/<group id>" NUL "<destination>") and the highest score
wins. The pick is reproducible from Git alone, the same request lands in the same place on
every machine, and adding a Destination only attracts groups that it now outscores for,
never reshuffling the rest. Because the pipeline is not part of the key, the same group
directory of different pipelines of one request lands together (Kratix may split them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.model.objects import Destination
from bot.model.works import Placement, Work, WorkloadGroup

# Selector sources, lowest priority first (contract §2.1). Unknown sources rank lowest, as in
# Kratix's sort, which only singles out "promise" and "promise-workflow".
SOURCE_PRIORITY: dict[str, int] = {"resource-workflow": 0, "promise-workflow": 1, "promise": 2}


@dataclass(frozen=True, slots=True)
class PendingGroup:
    """A workload group no Destination can take yet (contract §2.4)."""

    work_key: str
    group_id: str
    message: str


@dataclass(slots=True)
class Schedule:
    """The outcome of scheduling some Works.

    placements: every placement of the given Works, sorted (write or update all of them).
    misplaced: the subset whose Destination no longer matches (kept and updated, §2.3).
    pending: groups with no Destination, in Work then group order (§2.4).
    removed: existing placements of the given Works that are no longer wanted (their group was
        dropped from the Work, or their Destination no longer exists); sorted. Existing
        placements of Works not passed in are left alone and never reported here.
    """

    placements: list[Placement] = field(default_factory=list)
    misplaced: set[Placement] = field(default_factory=set)
    pending: list[PendingGroup] = field(default_factory=list)
    removed: list[Placement] = field(default_factory=list)


def resolve_selectors(group: WorkloadGroup) -> dict[str, str]:
    """The label selector of one workload group: its selectors merged lowest -> highest
    priority, so the Promise's own selectors win a conflict (contract §2.1)."""
    ordered = sorted(group.selectors, key=lambda s: SOURCE_PRIORITY.get(s.source, 0))
    merged: dict[str, str] = {}
    for selector in ordered:
        merged.update(selector.match_labels)
    return merged


def matching_destinations(
    selectors: Mapping[str, str], destinations: Iterable[Destination]
) -> list[Destination]:
    """The Destinations a group with these selectors may go to, sorted by name (contract §2.2)."""
    matches = [d for d in destinations if not d.dry_run and _matches(selectors, d)]
    return sorted(matches, key=lambda d: d.name)


def schedule(
    works: Sequence[Work], destinations: Mapping[str, Destination], existing: Iterable[Placement]
) -> Schedule:
    """Place every workload group of `works` (contract §2.3, §2.4).

    `destinations` maps name -> Destination (as in `Platform.destinations`); `existing` are the
    placements recorded by earlier reconciles (any Works; only those of `works` are used).
    """
    keys = {w.key for w in works}
    previous: dict[tuple[str, str], set[str]] = {}
    for p in existing:
        if p.work_key in keys:
            previous.setdefault((p.work_key, p.group_id), set()).add(p.destination)

    result = Schedule()
    placed: set[Placement] = set()
    for work in works:
        for group in work.groups:
            selectors = resolve_selectors(group)
            matching = {d.name for d in matching_destinations(selectors, destinations.values())}
            kept = {name for name in previous.get((work.key, group.id), set()) if name in destinations}
            if work.is_dependency:
                targets = matching | kept
            elif kept:
                targets = kept
            else:
                targets = {_pick(work, group.id, matching)} if matching else set()
            if not targets:
                result.pending.append(PendingGroup(work.key, group.id, pending_message(group, selectors)))
            for name in targets:
                placement = Placement(work.key, group.id, name)
                placed.add(placement)
                if name not in matching:
                    result.misplaced.add(placement)

    result.placements = sorted(placed)
    result.removed = sorted(
        Placement(work_key, group_id, name)
        for (work_key, group_id), names in previous.items()
        for name in names
        if Placement(work_key, group_id, name) not in placed
    )
    return result


def pending_message(group: WorkloadGroup, selectors: Mapping[str, str]) -> str:
    """Why a group waits, naming the group and the labels it needs (contract §2.4)."""
    where = f'workload group "{group.directory}" ({group.id})'
    if not selectors:
        return f"waiting for a destination for {where}"
    labels = ", ".join(f"{k}: {v}" for k, v in sorted(selectors.items()))
    return f"waiting for a destination with labels {{{labels}}} for {where}"


def _matches(selectors: Mapping[str, str], dest: Destination) -> bool:
    if not selectors:
        return not (dest.strict_match_labels and dest.labels)
    return all(dest.labels.get(k) == v for k, v in selectors.items())


def _pick(work: Work, group_id: str, candidates: Iterable[str]) -> str:
    """Rendezvous hashing over the candidate names. Candidates are visited in name order and
    `max` keeps the first best, so even a (practically impossible) score tie is deterministic."""
    key = f"{work.promise}/{work.resource_namespace}/{work.resource_name}/{group_id}".encode()

    def score(name: str) -> int:
        return int.from_bytes(hashlib.sha256(key + b"\x00" + name.encode()).digest(), "big")

    return max(sorted(candidates), key=score)
