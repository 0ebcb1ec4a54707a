"""One `FileChanges` per state store for a whole reconcile, then one write (or diff) each
(contract §3; the batching is a deliberate deviation: Kratix commits per WorkPlacement).

The reconciler says what to place, remove, render and clean up; this module asks `bot.kratix.layout`
for the paths, reads what layout needs from the store (none-mode state files) and groups
everything by state store, so each store gets at most one commit per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bot.kratix import layout
from bot.model.objects import Destination, StateStore
from bot.model.records import PendingWrite
from bot.model.works import FileChanges, Work, WorkloadGroup
from bot.statestores.base import FileDiff, NormalisedChanges, StateStoreError, StateStoreWriter, WriteResult


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
    pending: PendingWrite | None = None  # an earlier failed write, replayed first in this batch


class WriteSet:
    """Changes gathered per state store. Writers are opened lazily, once per store."""

    def __init__(self, open_writer: Callable[[StateStore], StateStoreWriter]) -> None:
        self._open = open_writer
        self._writers: dict[str, StateStoreWriter] = {}
        self.batches: dict[str, StoreBatch] = {}
        # Changes refused before any write (a path the layout or the store cannot take), by
        # Destination name: they are left out, so one bad Destination or output blocks nothing else.
        self.refused: dict[str, str] = {}
        self.unreadable: dict[str, str] = {}  # store key -> why it could not be read: nothing is applied to it

    def writer(self, store: StateStore) -> StateStoreWriter:
        key = store_key(store)
        if key not in self._writers:
            self._writers[key] = self._open(store)
        return self._writers[key]

    def add(self, target: Target, changes: FileChanges, *, current: bool = True) -> FileChanges:
        """Add `changes` to the target's store batch. `current`: the target is where the
        Destination is now (its path names it in plans), not where it was."""
        NormalisedChanges.of(changes)  # every path valid for a store, or ValueError before anything is added
        prefix = layout.store_prefix(target.store, target.dest)
        batch = self.batches.setdefault(target.key, StoreBatch(target.store))
        if current or target.dest.name not in batch.prefixes:
            batch.prefixes[target.dest.name] = prefix
        batch.changes.update(changes)
        return changes

    @contextmanager
    def _refusing(self, target: Target) -> Iterator[None]:
        """A path the layout or the store refuses (ValueError) is noted for the Destination, not raised."""
        try:
            yield
        except ValueError as exc:
            self.refused.setdefault(target.dest.name, str(exc))
        except StateStoreError as exc:
            self.batches.setdefault(target.key, StoreBatch(target.store))
            self.unreadable.setdefault(target.key, str(exc))

    def replay(self, pending: PendingWrite, store: StateStore) -> None:
        """An earlier failed write of `store` goes first in its batch: this run's changes were
        decided as if it had landed."""
        batch = self.batches.setdefault(pending.store_key, StoreBatch(store))
        batch.changes = pending.changes.then(batch.changes)
        batch.pending = pending

    def _previous_state(self, target: Target, work: Work, group_id: str) -> list[str] | None:
        if target.dest.filepath_mode != "none":
            return None
        content = self.writer(target.store).read(layout.state_file_path(target.store, target.dest, work, group_id))
        return layout.parse_state_file(content) if content else None

    def place(self, target: Target, work: Work, group: WorkloadGroup) -> FileChanges | None:
        """Write one placement (nestedByMetadata / none); aggregatedYAML is rendered instead.
        None when refused (see `refused`)."""
        with self._refusing(target):
            previous = self._previous_state(target, work, group.id)
            return self.add(target, layout.write_placement(target.store, target.dest, work, group, previous))
        return None

    def remove(self, target: Target, work: Work, group_id: str) -> None:
        with self._refusing(target):
            previous = self._previous_state(target, work, group_id)
            self.add(target, layout.remove_placement(target.store, target.dest, work, group_id, previous))

    def render_aggregated(self, target: Target, items: Iterable[tuple[str, WorkloadGroup]]) -> FileChanges | None:
        with self._refusing(target):
            return self.add(target, layout.render_aggregated(target.store, target.dest, list(items)))
        return None

    def canaries(self, target: Target) -> None:
        with self._refusing(target):
            self.add(target, layout.canary_changes(target.store, target.dest))

    def move_canaries(self, old: Target, new: Target) -> None:
        """A moved Destination's canaries go from where it was (§3.3: they follow its path)."""
        with self._refusing(old):
            gone = set(layout.canary_paths(old.store, old.dest))
            if old.key == new.key:
                gone -= set(layout.canary_paths(new.store, new.dest))
            if gone:
                self.add(old, FileChanges(deletes=gone), current=False)

    def cleanup(self, target: Target, placements: Iterable[tuple[Work, str]]) -> None:
        """A deleted Destination (§3.5): with cleanup all, its placements' files and canaries go."""
        with self._refusing(target):
            items = [(w, gid, self._previous_state(target, w, gid)) for w, gid in placements]
            self.add(target, layout.destination_cleanup(target.store, target.dest, items))

    def run(self, message: str, trailers: dict[str, str], *, dry_run: bool) -> None:
        """One apply (or diff) per store with changes; a failing store never stops the others."""
        for key in sorted(self.batches):
            batch = self.batches[key]
            if key in self.unreadable:
                batch.error = self.unreadable[key]
                continue
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
