"""One `FileChanges` per state store for a whole reconcile, then one write (or diff) each
(contract §3; the batching is a deliberate deviation: Kratix commits per WorkPlacement).

The reconciler says what to place, remove, render and clean up; this module asks `bot.layout`
for the paths, reads what layout needs from the store (none-mode state files) and groups
everything by state store, so each store gets at most one commit per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot import layout
from bot.model import Destination, FileChanges, StateStore, Work, WorkloadGroup
from bot.statestores.base import FileDiff, StateStoreError, StateStoreWriter, WriteResult


def store_key(store: StateStore) -> str:
    return f"{store.kind}/{store.name}"


def touches(changes: FileChanges, result: WriteResult) -> bool:
    """Whether a write's result added, modified or removed any file `changes` is about."""
    changed = {*result.added, *result.modified, *result.removed}
    own = set(changes.puts) | changes.deletes
    prefixes = tuple(p.rstrip("/") + "/" for p in changes.delete_prefixes)
    return any(path in own or path.startswith(prefixes) for path in changed)


@dataclass(slots=True)
class Target:
    """A Destination together with its state store (as they are now, or as last recorded)."""

    dest: Destination
    store: StateStore

    @property
    def key(self) -> str:
        return store_key(self.store)

    @property
    def aggregated(self) -> bool:
        return self.dest.filepath_mode == "aggregatedYAML"


@dataclass(slots=True)
class StoreBatch:
    store: StateStore
    changes: FileChanges = field(default_factory=FileChanges)
    prefixes: dict[str, str] = field(default_factory=dict)  # Destination name -> its path in the store
    result: WriteResult | None = None
    diff: list[FileDiff] = field(default_factory=list)
    error: str | None = None


class WriteSet:
    """Changes gathered per state store. Writers are opened lazily, once per store."""

    def __init__(self, open_writer: Callable[[StateStore], StateStoreWriter]) -> None:
        self._open = open_writer
        self._writers: dict[str, StateStoreWriter] = {}
        self.batches: dict[str, StoreBatch] = {}

    def writer(self, store: StateStore) -> StateStoreWriter:
        key = store_key(store)
        if key not in self._writers:
            self._writers[key] = self._open(store)
        return self._writers[key]

    def add(self, target: Target, changes: FileChanges) -> FileChanges:
        batch = self.batches.setdefault(target.key, StoreBatch(target.store))
        batch.prefixes[target.dest.name] = layout.store_prefix(target.store, target.dest)
        batch.changes.update(changes)
        return changes

    def _previous_state(self, target: Target, work: Work, group_id: str) -> list[str] | None:
        if target.dest.filepath_mode != "none":
            return None
        content = self.writer(target.store).read(layout.state_file_path(target.store, target.dest, work, group_id))
        return layout.parse_state_file(content) if content else None

    def place(self, target: Target, work: Work, group: WorkloadGroup) -> FileChanges:
        """Write one placement (nestedByMetadata / none); aggregatedYAML is rendered instead."""
        previous = self._previous_state(target, work, group.id)
        return self.add(target, layout.write_placement(target.store, target.dest, work, group, previous))

    def remove(self, target: Target, work: Work, group_id: str) -> None:
        previous = self._previous_state(target, work, group_id)
        self.add(target, layout.remove_placement(target.store, target.dest, work, group_id, previous))

    def render_aggregated(self, target: Target, items: Iterable[tuple[str, WorkloadGroup]]) -> FileChanges:
        return self.add(target, layout.render_aggregated(target.store, target.dest, list(items)))

    def canaries(self, target: Target) -> None:
        self.add(target, layout.canary_changes(target.store, target.dest))

    def cleanup(self, target: Target, placements: Iterable[tuple[Work, str]]) -> None:
        """A deleted Destination (§3.5): with cleanup all, its placements' files and canaries go."""
        items = [(w, gid, self._previous_state(target, w, gid)) for w, gid in placements]
        self.add(target, layout.destination_cleanup(target.store, target.dest, items))

    def run(self, message: str, trailers: dict[str, str], *, dry_run: bool) -> None:
        """One apply (or diff) per store with changes; a failing store never stops the others."""
        for key in sorted(self.batches):
            batch = self.batches[key]
            if not batch.changes:
                continue
            try:
                writer = self.writer(batch.store)
                if dry_run:
                    batch.diff = writer.diff(batch.changes)
                else:
                    batch.result = writer.apply(batch.changes, message, trailers)
            except (StateStoreError, ValueError, OSError) as exc:
                batch.error = str(exc)
