"""Where a change's objects landed: for each object a merged change added, changed or removed,
its placements as bookkeeping records them (Destination, state store, the store commit that
holds its files, or the write still pending). Pure: the caller reads the records.

This answers the merge comment even when another job's reconcile already wrote the change (two
merges in quick succession are reconciled by the first job that takes the platform's lock; the
second finds nothing left to do, yet its change landed, in the first job's commit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.kratix.conditions import RECONCILED, find_condition
from bot.model.objects import KRATIX_API_VERSION, Ref
from bot.model.records import ObjectRecord

LandedState = Literal["landed", "pending", "removed", "not reconciled"]


@dataclass(frozen=True, slots=True)
class Landed:
    ref: Ref
    state: LandedState
    destination: str = ""
    store: str = ""
    commit: str = ""
    note: str = ""  # the pending write's error, or why the object has no placement


def document_ref(data: Mapping[str, Any]) -> Ref | None:
    """The identity of one platform YAML document (a Kratix object or a Resource request), read
    from its own fields; None when it is not an object promisebot keeps records of."""
    api_version, kind, meta = data.get("apiVersion"), data.get("kind"), data.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(meta, Mapping):
        return None
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None
    if api_version == KRATIX_API_VERSION:
        return Ref(kind, name)
    if "/" not in api_version:
        return None
    namespace = meta.get("namespace")
    return Ref(f"{kind}.{api_version.split('/', 1)[0]}", name,
               namespace if isinstance(namespace, str) and namespace else "default")


def where_landed(refs: Iterable[Ref], records: Mapping[Ref, ObjectRecord],
                 removed: Iterable[Ref] = ()) -> list[Landed]:
    """One row per placement of each of `refs` (sorted). `removed`: the objects the change
    deleted (their records go with their files, once the deletion is reconciled)."""
    rows: list[Landed] = []
    gone = set(removed)
    for ref in sorted(set(refs) | gone, key=str):
        record = records.get(ref)
        if record is None:
            rows.append(Landed(ref, "removed") if ref in gone else
                        Landed(ref, "not reconciled", note="no record of it yet"))
            continue
        if ref in gone:
            rows.append(Landed(ref, "pending", note="deleted, but its files are still in place"))
            continue
        if record.invalid:
            rows.append(Landed(ref, "not reconciled", note="invalid: not acted on"))
            continue
        if not record.placements:
            reconciled = find_condition(record.status, RECONCILED) or {}
            rows.append(Landed(ref, "landed", note=str(reconciled.get("message") or "no files to place")))
            continue
        for p in sorted(record.placements, key=lambda p: (p.destination, p.store, p.group_id)):
            if p.pending:
                rows.append(Landed(ref, "pending", p.destination, p.store, note=p.pending))
            else:
                rows.append(Landed(ref, "landed", p.destination, p.store, p.commit or ""))
    return rows
