"""What changed between two platform snapshots (contract §1.7, §4.2). Pure: no I/O; `before`
and `after` are `Platform`s read elsewhere.

    detect_changes(before: Platform | None, after: Platform | None) -> PlatformChanges

An incremental reconcile looks at these objects (`PlatformChanges.refs`) and at those that asked
for another look; whether a workflow runs is decided for each of them, in one place, by
`bot.reconcile.decide` (`is_paused`, `configure_reason`: cache keys, labels, the record's notes).

- An object is "updated" by any edit of its body, labels and annotations included (a
  Destination relabel matters for scheduling, a label may pause or re-run a workflow); moving
  it to another file is no change.
- The requests of a Promise that was created or whose spec changed are affected too
  (`affected_requests`): their cache keys hold the Promise's spec hash (§4.2), and requests
  written before their Promise have no record yet. Other Promise edits need no such list: every
  request of a paused Promise, or of one with a pending `kratix.io/reconcile-resources` label, is
  looked at anyway, and requests that could not run (paused, waiting) asked for another look
  (bot.reconcile.phases).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.model.objects import Platform, Ref

Change = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object that was created, updated (any edit of its body) or deleted."""

    ref: Ref
    change: Change


@dataclass(slots=True)
class PlatformChanges:
    """Per kind, the objects that changed, sorted by ref; and the requests a Promise change
    concerns (`affected_requests`, sorted: those of a Promise created or whose spec changed)."""

    promises: list[ObjectChange] = field(default_factory=list)
    requests: list[ObjectChange] = field(default_factory=list)
    destinations: list[ObjectChange] = field(default_factory=list)
    state_stores: list[ObjectChange] = field(default_factory=list)
    affected_requests: list[Ref] = field(default_factory=list)

    def refs(self) -> set[Ref]:
        """Every object that changed or is affected: an incremental reconcile's candidates."""
        changed = (*self.promises, *self.requests, *self.destinations, *self.state_stores)
        return {c.ref for c in changed} | set(self.affected_requests)

    def __bool__(self) -> bool:
        return bool(self.promises or self.requests or self.destinations or self.state_stores
                    or self.affected_requests)


def detect_changes(before: Platform | None, after: Platform | None) -> PlatformChanges:
    """Compare two snapshots; None is an empty platform (first run, or everything removed)."""
    before = before or Platform()
    after = after or Platform()
    new_specs = {name for name, p in after.promises.items()
                 if name not in before.promises or before.promises[name].spec != p.spec}
    return PlatformChanges(
        promises=_changes(before.promises, after.promises),
        requests=_changes(before.requests, after.requests),
        destinations=_changes(before.destinations, after.destinations),
        state_stores=_changes(before.state_stores, after.state_stores),
        affected_requests=sorted(r.ref for r in after.requests.values() if r.promise in new_specs),
    )


def _changes(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> list[ObjectChange]:
    """Created, updated (any body edit) or deleted objects of one kind, sorted by ref."""
    changes = []
    for key in old.keys() | new.keys():
        if key not in old:
            changes.append(ObjectChange(new[key].ref, "created"))
        elif key not in new:
            changes.append(ObjectChange(old[key].ref, "deleted"))
        elif old[key].body != new[key].body:
            changes.append(ObjectChange(new[key].ref, "updated"))
    return sorted(changes, key=lambda c: c.ref)
