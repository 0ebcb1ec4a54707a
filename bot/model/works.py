"""What pipelines produce and where it goes (contract §1.6, §2, §3): workload groups, Works,
placements and the file changes one write makes. Pure data, shared by runners, scheduling,
layout and the reconciler."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Selector:
    match_labels: dict[str, str]
    source: str  # "resource-workflow" | "promise-workflow" | "promise"


@dataclass(slots=True)
class Workload:
    filepath: str  # relative to /kratix/output, "/"-separated; directory groups keep their dir prefix
    content: bytes


@dataclass(slots=True)
class WorkloadGroup:
    directory: str  # "." for the default group
    id: str  # md5 hex of directory
    workloads: list[Workload]
    selectors: list[Selector]


@dataclass(slots=True)
class Work:
    """The output of one pipeline for one object (or a Promise's static dependencies).

    resource_name == "" means a dependency Work (promise workflow or static deps):
    it goes to every matching Destination. Otherwise each group goes to one.
    """

    promise: str
    pipeline: str  # pipeline name; "" for static dependencies
    groups: list[WorkloadGroup]
    resource_name: str = ""
    resource_namespace: str = ""

    @property
    def is_dependency(self) -> bool:
        return self.resource_name == ""

    @property
    def key(self) -> str:
        """Stable identity of the Work across runs."""
        if self.is_dependency:
            return f"{self.promise}/{self.pipeline or 'static'}"
        return f"{self.promise}/{self.resource_namespace}/{self.resource_name}/{self.pipeline}"


@dataclass(frozen=True, slots=True, order=True)
class Placement:
    """One workload group of one Work on one Destination (Kratix's WorkPlacement)."""

    work_key: str
    group_id: str
    destination: str


@dataclass(slots=True)
class FileChanges:
    """What one write does to one state store. Paths are relative to the store root
    (repo root or bucket) and already include the store's and the Destination's path.

    `delete_prefixes` are directories whose every file is removed unless also in `puts`
    (how nestedByMetadata mirrors the latest output).
    """

    puts: dict[str, bytes] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    delete_prefixes: set[str] = field(default_factory=set)

    def update(self, other: FileChanges) -> None:
        for path in other.deletes:
            self.puts.pop(path, None)
        self.deletes |= other.deletes
        self.delete_prefixes |= other.delete_prefixes
        self.puts.update(other.puts)
        self.deletes -= set(other.puts)

    def then(self, later: FileChanges) -> FileChanges:
        """These changes followed by `later`, as one change set: a file this set puts that
        `later` deletes (explicitly or under one of its delete prefixes) is not put."""
        roots = {p.strip("/") for p in later.delete_prefixes}
        prefixes = tuple(p + "/" for p in roots if p)
        everything = "" in roots
        out = FileChanges(dict(self.puts), set(self.deletes), set(self.delete_prefixes))
        for path in list(out.puts):
            if everything or path in later.deletes or path.startswith(prefixes):
                del out.puts[path]
        out.update(later)
        return out

    def __bool__(self) -> bool:
        return bool(self.puts or self.deletes or self.delete_prefixes)
