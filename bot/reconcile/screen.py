"""Reconcile and plan never act on an object that `promisebot validate` rejects (contract §1.1:
Kratix's API server and admission webhooks refuse such objects, so they never reach a
controller).

An invalid object that has a last valid version (recorded by bookkeeping) keeps it: nothing it
owns is deleted or rewritten, as in Kratix, where a rejected update leaves the stored object as
it was. A new invalid object does not exist for the engine. Either way the run reports each
problem with file, line and field, the object's status says it is invalid, and the rest of the
platform proceeds. Problems of files that hold no object (unparseable YAML, a document of no
known kind) are reported too, and those files are read again by every run until fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.model.objects import Platform, Problem, Ref
from bot.platform.validate.platform import object_errors

ObjectKey = Ref  # Promises, Destinations, State Stores and requests all have a Ref


@dataclass(slots=True)
class Screening:
    """What validation rejected in one snapshot."""

    invalid: dict[ObjectKey, list[Problem]] = field(default_factory=dict)  # loaded objects with errors
    unattached: list[Problem] = field(default_factory=list)  # errors of files that hold no object

    @property
    def errors(self) -> list[Problem]:
        out = [p for ps in self.invalid.values() for p in ps] + self.unattached
        return sorted(out, key=lambda p: (p.source.file, p.source.line, p.field, p.message))

    def files(self) -> set[str]:
        return {p.source.file for p in self.errors}


def screen(platform: Platform) -> Screening:
    """Validate `platform` (bot.platform.validate.platform): each object's errors, and the load problems of
    documents the loader left out (they belong to no object)."""
    out = Screening(invalid=object_errors(platform),
                    unattached=[p for p in platform.problems if p.severity == "error"])
    for dest in platform.destinations.values():  # a Destination cannot be used without its store
        if dest.state_store_ref in out.invalid:
            store = dest.state_store_ref
            out.invalid.setdefault(dest.ref, []).append(Problem(
                dest.source, "spec.stateStoreRef",
                f"{store.kind} {store.name} is invalid ({store_source(platform, store)})"))
    return out


def store_source(platform: Platform, ref: Ref) -> str:
    store = platform.state_stores.get(ref)
    return str(store.source) if store else "not found"


def problem_json(problem: Problem, obj: ObjectKey | None = None) -> dict[str, Any]:
    out = problem.as_dict()
    if obj is not None:
        out["object"] = str(obj)
    return out


def invalid_json(screening: Screening) -> list[dict[str, Any]]:
    """Every error of a screening, each with its object when it has one, in file order."""
    out = [problem_json(p, ref) for ref, problems in screening.invalid.items() for p in problems]
    out += [problem_json(p) for p in screening.unattached]
    return sorted(out, key=lambda d: (d["file"], d["line"], d["field"], d["message"]))
