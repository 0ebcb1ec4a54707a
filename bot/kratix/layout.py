"""Where placements land in a state store, and the `FileChanges` that put them there
(contract §3.1-§3.3, §3.5). Pure: no I/O; the reconciler reads what is needed (none-mode state
files) and hands the returned `FileChanges` to the state-store adapter.

Public API (every path returned is relative to the store root - repo root or bucket - and
already includes `<store.path>/<destination.path>/`):

    store_prefix(store: StateStore, dest: Destination) -> str
    work_name(work: Work) -> str
    placement_name(work: Work, group_id: str, destination: str) -> str
    placement_namespace(work: Work) -> str
    placement_dir(store, dest, work, group_id: str) -> str              # nestedByMetadata
    placement_files(store, dest, work, group: WorkloadGroup) -> dict[str, bytes]
    write_placement(store, dest, work, group, previous_state: list[str] | None = None)
        -> FileChanges
    remove_placement(store, dest, work, group_id, previous_state: list[str] | None = None)
        -> FileChanges
    state_file_path(store, dest, work, group_id) -> str                 # none mode
    parse_state_file(content: bytes) -> list[str]
    render_aggregated(store, dest, items: Iterable[tuple[str, WorkloadGroup]]) -> FileChanges
    canary_paths(store, dest) -> tuple[str, str]
    canary_changes(store, dest) -> FileChanges
    destination_cleanup(store, dest, placements: Iterable[tuple[Work, str, list[str] | None]])
        -> FileChanges
    static_dependencies_work(promise: Promise) -> Work | None

Paths per `filepath.mode` (§3.2), with P = `<store.path>/<destination.path>`:

- nestedByMetadata: dependencies at `P/dependencies/<promise>/<pipeline>/<groupID[0:5]>/<file>`,
  the static `spec.dependencies` Work at `P/dependencies/<promise>/5058f/static/<promise>-
  dependencies.yaml`, resources at `P/resources/<namespace>/<promise>/<name>/<pipeline>/
  <groupID[0:5]>/<file>`. A placement owns its directory: a write replaces it exactly
  (`delete_prefixes`, which always end in "/", plus `puts`), a removal deletes it.
- aggregatedYAML: one file `P/<filename>` holding every workload of every placement on the
  Destination, placements in name order, joined with "\\n---\\n"; deleted when empty. It is
  rendered from all the Destination's placements at once (`render_aggregated`);
  `write_placement`/`remove_placement` refuse this mode.
- none: flat files at `P/<file>` plus a state file `P/.kratix/<namespace>-<placement>.yaml`
  listing them as `files: [...]`. As in Kratix, the listed paths are relative to the store's
  path (`<destination.path>/<file>`), so state files Kratix wrote are read correctly;
  `previous_state` is that list as `parse_state_file` returns it.

Deliberate deviation: Kratix names a Work `<identifier>-<5 random chars>`; here the suffix is
the first 5 hex of md5(`Work.key`), so placement names (which order aggregatedYAML files and
name none-mode state files) are reproducible from Git alone and two requests whose
identifiers coincide (same name in two namespaces, truncation) still get distinct names.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Iterable

import yaml

from bot.kratix import goyaml
from bot.kratix.workloads import DEFAULT_DIRECTORY, DEFAULT_GROUP_ID
from bot.model.objects import FILEPATH_MODES, Destination, Promise, StateStore
from bot.model.works import FileChanges, Selector, Work, Workload, WorkloadGroup

SYSTEM_NAMESPACE = "kratix-platform-system"  # namespace of dependency Works (contract §1.6)
AGGREGATED_SEPARATOR = b"\n---\n"

# Canary documents, byte for byte as Kratix writes them (contract §3.3).
CANARY_NAMESPACE = (
    b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kratix-worker-system\nspec: {}\nstatus: {}\n"
)
CANARY_CONFIGMAP = (
    b"apiVersion: v1\ndata:\n  canary: this confirms your infrastructure is reading from Kratix state stores\n"
    b"kind: ConfigMap\nmetadata:\n  name: kratix-info\n  namespace: kratix-worker-system\n"
)

_MAX_WORK_IDENTIFIER = 63 - 1 - 5  # Kratix K:lib/objectutil/name.go maxNameLength
_NOT_ALNUM_TAIL = re.compile(r"[^A-Za-z0-9]+$")


def store_prefix(store: StateStore, dest: Destination) -> str:
    """`<store.path>/<destination.path>` normalised: no leading or doubled "/", "." and "/"
    meaning the root (""). (contract §3.1)"""
    return _join(store.path, dest.path)


def work_name(work: Work) -> str:
    """Kratix's Work name (`GenerateObjectName(identifier)`, contract §1.6) with a deterministic
    suffix. Identifier: `<promise>-<pipeline>` for promise workflows, `<promise>-static-deps`
    for static dependencies, `<promise>-<name>-<pipeline>` for resources."""
    if not work.is_dependency:
        identifier = f"{work.promise}-{work.resource_name}-{work.pipeline}"
    elif work.pipeline:
        identifier = f"{work.promise}-{work.pipeline}"
    else:
        identifier = f"{work.promise}-static-deps"
    if len(identifier) > _MAX_WORK_IDENTIFIER:
        identifier = identifier[: _MAX_WORK_IDENTIFIER - 1]
    identifier = _NOT_ALNUM_TAIL.sub("", identifier)
    return f"{identifier}-{hashlib.md5(work.key.encode()).hexdigest()[:5]}"


def placement_name(work: Work, group_id: str, destination: str) -> str:
    """`<work name>.<destination>-<groupID[0:5]>` as Kratix names WorkPlacements (contract §2.3)."""
    return f"{work_name(work)}.{destination}-{group_id[:5]}"


def placement_namespace(work: Work) -> str:
    """The request's namespace, or `kratix-platform-system` for dependency Works (§1.6)."""
    return work.resource_namespace if not work.is_dependency else SYSTEM_NAMESPACE


def placement_dir(store: StateStore, dest: Destination, work: Work, group_id: str) -> str:
    """The directory a placement owns under nestedByMetadata (contract §3.2). The static
    dependencies Work has no pipeline, so its directory is `dependencies/<promise>/5058f`."""
    prefix = store_prefix(store, dest)
    if work.is_dependency:
        return _join(prefix, "dependencies", work.promise, work.pipeline, group_id[:5])
    return _join(
        prefix,
        "resources",
        work.resource_namespace,
        work.promise,
        work.resource_name,
        work.pipeline,
        group_id[:5],
    )


def placement_files(
    store: StateStore, dest: Destination, work: Work, group: WorkloadGroup
) -> dict[str, bytes]:
    """The workload files of one placement (without the none-mode state file)."""
    mode = _mode(dest)
    if mode == "nestedByMetadata":
        base = placement_dir(store, dest, work, group.id)
    elif mode == "none":
        base = store_prefix(store, dest)
    else:
        raise ValueError(f"Destination {dest.name} uses aggregatedYAML: render it with render_aggregated")
    # a workload path is normalised on its own first, so it can never leave the placement
    return {_join(base, _join(w.filepath)): w.content for w in group.workloads}


def write_placement(
    store: StateStore,
    dest: Destination,
    work: Work,
    group: WorkloadGroup,
    previous_state: list[str] | None = None,
) -> FileChanges:
    """The changes that make a placement's files mirror `group` exactly (contract §3.2).

    nestedByMetadata: replace the placement's directory. none: put the files and the state
    file, and delete files listed in `previous_state` (the old state file, parsed) that are no
    longer produced.
    """
    files = placement_files(store, dest, work, group)
    if _mode(dest) == "nestedByMetadata":
        return FileChanges(puts=files, delete_prefixes={placement_dir(store, dest, work, group.id) + "/"})
    entries = [_join(dest.path, _join(w.filepath)) for w in group.workloads]
    stale = {_join(store.path, entry) for entry in previous_state or []} - set(files)
    puts = dict(files)
    puts[state_file_path(store, dest, work, group.id)] = _render_state_file(entries)
    return FileChanges(puts=puts, deletes=stale)


def remove_placement(
    store: StateStore,
    dest: Destination,
    work: Work,
    group_id: str,
    previous_state: list[str] | None = None,
) -> FileChanges:
    """The changes that remove a placement's files (contract §3.2): its directory under
    nestedByMetadata; under none, the files its state file lists and the state file itself."""
    mode = _mode(dest)
    if mode == "nestedByMetadata":
        return FileChanges(delete_prefixes={placement_dir(store, dest, work, group_id) + "/"})
    if mode == "none":
        deletes = {_join(store.path, entry) for entry in previous_state or []}
        deletes.add(state_file_path(store, dest, work, group_id))
        return FileChanges(deletes=deletes)
    raise ValueError(f"Destination {dest.name} uses aggregatedYAML: render it with render_aggregated")


def state_file_path(store: StateStore, dest: Destination, work: Work, group_id: str) -> str:
    """`P/.kratix/<namespace>-<placement name>.yaml`, the none-mode state file (contract §3.2)."""
    name = placement_name(work, group_id, dest.name)
    return _join(store_prefix(store, dest), ".kratix", f"{placement_namespace(work)}-{name}.yaml")


def parse_state_file(content: bytes) -> list[str]:
    """The `files` a none-mode state file lists, normalised (relative to the store's path)."""
    doc = yaml.safe_load(content) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("files") or [], list):
        raise ValueError("not a .kratix state file: expected a mapping with a 'files' list")
    return [_join(str(entry)) for entry in doc.get("files") or []]


def render_aggregated(
    store: StateStore, dest: Destination, items: Iterable[tuple[str, WorkloadGroup]]
) -> FileChanges:
    """The aggregatedYAML file of a Destination (contract §3.2): the contents of every workload
    of every placement on it, `items` = (placement name, group) sorted by placement name,
    joined with "\\n---\\n" without any YAML normalisation; deleted when that is empty.
    Workloads keep their order within a group."""
    path = _join(store_prefix(store, dest), dest.filename)
    contents = [w.content for _, group in sorted(items, key=lambda item: item[0]) for w in group.workloads]
    combined = AGGREGATED_SEPARATOR.join(contents)
    if not combined:
        return FileChanges(deletes={path})
    return FileChanges(puts={path: combined})


def canary_paths(store: StateStore, dest: Destination) -> tuple[str, str]:
    """(namespace canary, configmap canary) paths (contract §3.3)."""
    prefix = store_prefix(store, dest)
    if _mode(dest) == "nestedByMetadata":
        return (
            _join(prefix, "dependencies", "kratix-canary-namespace.yaml"),
            _join(prefix, "resources", "kratix-canary-configmap.yaml"),
        )
    return _join(prefix, "kratix-canary-namespace.yaml"), _join(prefix, "kratix-canary-configmap.yaml")


def canary_changes(store: StateStore, dest: Destination) -> FileChanges:
    """Write the canaries, or delete them when `initWorkloads.enabled` is false (§3.3)."""
    namespace_path, configmap_path = canary_paths(store, dest)
    if not dest.init_workloads:
        return FileChanges(deletes={namespace_path, configmap_path})
    return FileChanges(puts={namespace_path: CANARY_NAMESPACE, configmap_path: CANARY_CONFIGMAP})


def destination_cleanup(
    store: StateStore, dest: Destination, placements: Iterable[tuple[Work, str, list[str] | None]]
) -> FileChanges:
    """What removing a Destination does to its state store (contract §3.5). `cleanup: none`
    leaves everything in place; `cleanup: all` removes the files of every placement on it
    (`placements` = (work, group id, parsed none-mode state file or None)) and the canaries."""
    changes = FileChanges()
    if dest.cleanup != "all":
        return changes
    if _mode(dest) == "aggregatedYAML":
        changes.update(render_aggregated(store, dest, []))
    else:
        for work, group_id, previous_state in placements:
            changes.update(remove_placement(store, dest, work, group_id, previous_state))
    changes.update(FileChanges(deletes=set(canary_paths(store, dest))))
    return changes


def static_dependencies_work(promise: Promise) -> Work | None:
    """The Work of a Promise's `spec.dependencies` (contract §4.1 step 6, Kratix
    `NewPromiseDependenciesWork`): one default group holding `static/<promise>-dependencies.yaml`,
    the dependencies as consecutive YAML documents written as yaml.v2 does, scheduled with the squashed
    Promise selectors (source "promise"). None when the Promise has no dependencies."""
    if not promise.dependencies:
        return None
    content = goyaml.dump_v2(promise.dependencies)
    selectors = (
        [Selector(dict(promise.destination_selectors), "promise")] if promise.destination_selectors else []
    )
    workload = Workload(f"static/{promise.name}-dependencies.yaml", content)
    group = WorkloadGroup(DEFAULT_DIRECTORY, DEFAULT_GROUP_ID, [workload], selectors)
    return Work(promise.name, "", [group])


def _render_state_file(entries: list[str]) -> bytes:
    """`files: [...]` as Kratix marshals its StateFile (gopkg.in/yaml.v2)."""
    return goyaml.dump_v2([{"files": entries}])


def _mode(dest: Destination) -> str:
    if dest.filepath_mode not in FILEPATH_MODES:
        raise ValueError(f"Destination {dest.name}: unknown filepath mode {dest.filepath_mode!r}")
    return dest.filepath_mode


def _join(*parts: str) -> str:
    """Join path parts like Go's filepath.Join, relative to the store root: empty, "." and
    leading "/" parts vanish. A result escaping the root ("..") is refused."""
    cleaned = [p.strip("/") for p in parts]
    joined = posixpath.normpath("/".join(p for p in cleaned if p not in ("", ".")) or ".")
    if joined == ".." or joined.startswith("../"):
        raise ValueError(f"path escapes the state store root: {'/'.join(parts)!r}")
    return "" if joined == "." else joined
