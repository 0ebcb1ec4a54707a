"""A pipeline's outputs as Kratix workload groups, as pure functions.

Contract §1.5a (`/kratix/metadata/destination-selectors.yaml`: format and validation, with
Kratix's error messages) and §1.6 (grouping of `/kratix/output` files: one group per listed
directory, the rest in the default group "." whose id is md5(".")).
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

from bot.errors import PromisebotError
from bot.model.objects import WorkflowType
from bot.model.works import Selector, Workload, WorkloadGroup

DEFAULT_DIRECTORY = "."
SELECTORS_FILE = "/kratix/metadata/destination-selectors.yaml"


def group_id(directory: str) -> str:
    """Kratix's workload group id: md5 hex of the (cleaned) directory."""
    return hashlib.md5(directory.encode()).hexdigest()


DEFAULT_GROUP_ID = group_id(DEFAULT_DIRECTORY)  # 5058f1af8388633f609cadb75a75dc9d


class SelectorsError(PromisebotError, ValueError):
    """destination-selectors.yaml (or the output it refers to) is invalid; fails the pipeline."""


@dataclass(frozen=True, slots=True)
class DirectorySelector:
    """One entry of destination-selectors.yaml; directory is cleaned, "." for the root."""

    directory: str
    match_labels: dict[str, str]


def parse_destination_selectors(doc: Any) -> list[DirectorySelector]:
    """Validate a parsed destination-selectors.yaml (None: no file) like Kratix's
    `ParseDestinationSelectors` (§1.5a): matchLabels required, no duplicates, no sub-directories."""
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise SelectorsError(f"invalid destination-selectors.yaml: {SELECTORS_FILE} must be a list of "
                             "{directory, matchLabels} entries")
    entries: list[DirectorySelector] = []
    for i, item in enumerate(doc):
        where = f"invalid destination-selectors.yaml: entry with index {i}"
        if not isinstance(item, dict):
            raise SelectorsError(f"{where} is not a mapping")
        # Unknown keys are dropped, as Go's (non-strict) JSON decoding does.
        directory = item.get("directory")
        directory = "" if directory is None else directory
        if not isinstance(directory, str):
            raise SelectorsError(f"{where}: directory must be a string")
        labels = item.get("matchLabels") or {}
        if not isinstance(labels, dict):
            raise SelectorsError(f"{where}: matchLabels must be a mapping")
        entries.append(DirectorySelector(go_clean(directory), {str(k): _label_value(v, f"{where}: matchLabels.{k}")
                                                               for k, v in labels.items()}))
    for i, entry in enumerate(entries):
        if not entry.match_labels:
            raise SelectorsError(f"invalid destination-selectors.yaml: entry with index {i} has no selectors")
    seen: set[str] = set()
    for entry in entries:
        if entry.directory in seen:
            raise SelectorsError("duplicate entries in destination-selectors.yaml: directory "
                                 f"{entry.directory!r} is listed more than once")
        seen.add(entry.directory)
    for entry in entries:
        d = entry.directory
        if posixpath.basename(d) != d or d.startswith("/") or d == "..":
            raise SelectorsError(f"invalid directory in destination-selectors.yaml: {d}, "
                                 "sub-directories are not allowed")
    return entries


def group_workloads(files: dict[str, bytes], directories: set[str], selectors: list[DirectorySelector],
                    promise_selectors: dict[str, str], wtype: WorkflowType) -> list[WorkloadGroup]:
    """Group output files (path relative to /kratix/output -> bytes) as Kratix's work-creator
    does (§1.6). `directories` are the directories present in the output (a listed directory
    must exist, even if empty). Directory groups come first, in file order, then the default
    group, which is omitted when it has no files."""
    source = f"{wtype}-workflow"
    groups: list[WorkloadGroup] = []
    claimed: set[str] = set()
    root_labels: dict[str, str] | None = None
    for sel in selectors:
        if sel.directory == DEFAULT_DIRECTORY:
            root_labels = sel.match_labels
            continue
        if sel.directory not in directories:
            raise SelectorsError(f"destination-selectors.yaml lists directory {sel.directory!r}, which does "
                                 "not exist in /kratix/output")
        claimed.add(sel.directory)
        groups.append(WorkloadGroup(
            directory=sel.directory,
            id=group_id(sel.directory),
            workloads=_workloads(files, lambda p, d=sel.directory: p.startswith(d + "/")),
            selectors=[Selector(dict(sel.match_labels), source)],
        ))
    default = _workloads(files, lambda p: p.split("/", 1)[0] not in claimed or "/" not in p)
    if default:
        group_selectors = [Selector(dict(root_labels), source)] if root_labels is not None else []
        if promise_selectors:
            group_selectors.append(Selector(dict(promise_selectors), "promise"))
        groups.append(WorkloadGroup(DEFAULT_DIRECTORY, DEFAULT_GROUP_ID, default, group_selectors))
    return groups


def _workloads(files: dict[str, bytes], keep: Any) -> list[Workload]:
    # Kratix walks directories in lexical order of entry names: sort by path components.
    return [Workload(p, files[p]) for p in sorted(files, key=lambda p: p.split("/")) if keep(p)]


def go_clean(path: str) -> str:
    """Go's `filepath.Clean`: "" and "./" are ".", "a/../b" is "b", and unlike POSIX
    normpath a leading "//" collapses to "/"."""
    cleaned = posixpath.normpath(path) if path else DEFAULT_DIRECTORY
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _label_value(value: Any, where: str) -> str:
    """matchLabels is map[string]string in Kratix: null decodes as "", anything else that is
    not a string fails the pipeline."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SelectorsError(f"{where} must be a string, not {type(value).__name__} {value!r} (quote it)")
    return value
