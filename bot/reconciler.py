"""The reconcile engine: one event -> one plan -> pipeline runs -> one write per state store
-> bookkeeping (contract §4; docs/reconciler.md walks through it).

    platform at `to` (+ at `from` for an incremental run) + bookkeeping
      -> which workflows run (bot.reconcile_plan: cache keys, §1.7/§4.7)
      -> phase 1: Promise configure / delete pipelines (§4.1, §4.3)
      -> phase 2: request configure / delete pipelines of available Promises (§4.4, §4.5)
      -> Works (new from runs, the rest from bookkeeping) -> scheduling (sticky, §2)
      -> layout -> ONE apply per state store (§3) -> bookkeeping, AFTER the store commits.

A reconcile with `dry_run` (what `promisebot plan` does) runs the pipelines to know their
outputs but writes nothing: it returns each store's diff. A compound Promise's outputs that
land in the platform repo itself (a GitStateStore pointing at it) are reconciled again in the
same call, until nothing changes (§4.6).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import layout
from bot.bookkeeping import EVENT_TRAILER, Bookkeeping, ObjectRecord, PlacementRecord, work_digest
from bot.changes import detect_changes, due_for_periodic, spec_hash
from bot.gitcmd import rev_sha
from bot.model import DESTINATION, PROMISE, FileChanges, Placement, Ref, ResourceRequest, Work
from bot.objects import PROMISE_VERSION_LABEL, is_paused, rebuild
from bot.platform import GitTreeSource, LoadedPlatform, load_platform, read_settings
from bot.reconcile_plan import (
    DELETED,
    Task,
    configure_reason,
    now_utc,
    parse_time,
    promise_cache_key,
    request_cache_key,
)
from bot.reconcile_run import Outcome, crash_point, fold_configure, run_tasks
from bot.reconcile_scope import partial_paths
from bot.reconcile_status import (
    configure_succeeded,
    delete_failed,
    destination_ready,
    invalid,
    paused,
    promise_requirements,
    requirements_not_installed,
    waiting_for_promise,
    works_outcome,
)
from bot.scheduling import schedule
from bot.secrets import SecretResolver
from bot.settings import SETTINGS_FILE, Settings
from bot.statestores.base import open_store
from bot.validate_common import Report
from bot.validation import check_request
from bot.writes import StoreBatch, Target, WriteSet, store_key, touches
from runners.base import Runner

MAX_COMPOUND_ROUNDS = 5
Progress = Callable[[str, int, int], None]


class ReconcileError(RuntimeError):
    """The reconcile could not start (unreadable revision, invalid settings)."""


@dataclass(slots=True)
class ReconcileReport:
    from_rev: str | None
    to_rev: str
    full: bool
    outcomes: list[Outcome] = field(default_factory=list)
    batches: list[StoreBatch] = field(default_factory=list)
    bookkeeping_commit: str | None = None
    statuses: dict[Ref, dict[str, Any]] = field(default_factory=dict)
    rounds: int = 1

    @property
    def commits(self) -> dict[str, str]:
        return {store_key(b.store): b.result.revision for b in self.batches if b.result and b.result.revision}

    @property
    def changed(self) -> bool:
        return any(b.diff or (b.result and b.result.revision) for b in self.batches)

    @property
    def errors(self) -> list[str]:
        return [f"{store_key(b.store)}: {b.error}" for b in self.batches if b.error]


def rev_parse(repo: Path, rev: str) -> str:
    sha = rev_sha(repo, rev)
    if sha is None:
        raise ReconcileError(f"cannot resolve revision {rev!r} in {repo}")
    return sha


def reconcile(
    repo: Path,
    *,
    runner: Runner,
    from_rev: str | None = None,
    to_rev: str | None = None,
    full: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Reconcile the platform repo at `to_rev` (default HEAD). See the module docstring."""
    repo = Path(repo)
    report = _Run(repo, runner, from_rev, to_rev or "HEAD", full, dry_run, progress).run()
    rounds = 1
    # Compound Promises (§4.6): outputs committed into the platform repo itself are platform
    # input; reconcile the new HEAD until a round changes nothing more.
    while not dry_run and to_rev is None and report.commits and rounds < MAX_COMPOUND_ROUNDS:
        head = rev_parse(repo, "HEAD")
        if head == report.to_rev:
            break
        rounds += 1
        nxt = _Run(repo, runner, report.to_rev, head, False, dry_run, progress).run()
        nxt.outcomes = report.outcomes + nxt.outcomes
        nxt.batches = report.batches + nxt.batches
        report = nxt
    report.rounds = rounds
    return report


def _ref_json(ref: Ref) -> list[str]:
    return [ref.kind, ref.namespace, ref.name]


class _Run:
    """One reconcile of one platform revision."""

    def __init__(self, repo: Path, runner: Runner, from_rev: str | None, to_rev: str, full: bool,
                 dry_run: bool, progress: Progress | None) -> None:
        self.repo, self.runner, self.dry_run, self.progress = repo, runner, dry_run, progress
        self.to_sha = rev_parse(repo, to_rev)
        self.settings: Settings = read_settings(GitTreeSource(repo, self.to_sha, frozenset({SETTINGS_FILE})))[0]
        self.bk = Bookkeeping.open(repo, self.settings.state_branch)
        # The last reconciled commit; a clone that lacks it (shallow) runs in full, which
        # compares every cache key and so comes to the same plan.
        recorded = self.bk.meta.get("revision")
        self.from_sha = rev_parse(repo, from_rev) if from_rev else recorded and rev_sha(repo, recorded)
        self.now = now_utc()
        last_full = parse_time(self.bk.meta.get("lastFullReconcile"))
        periodic = due_for_periodic(last_full.timestamp() if last_full else None, self.now.timestamp(),
                                    self.settings.reconcile_interval_seconds)
        self.periodic = periodic or not self.from_sha
        self.full = full or self.periodic
        self.attention_refs = {Ref(k, n, ns) for k, ns, n in self.bk.meta.get("attention") or []}
        self.records: dict[Ref, ObjectRecord] = {}
        self.works: dict[Ref, dict[str, Work]] = {}  # current Works of touched objects
        self.old_digests: dict[Ref, dict[str, str]] = {}
        self.deleted: set[Ref] = set()  # objects whose record goes
        self.attention: set[Ref] = set()
        self.outcomes: list[Outcome] = []
        self.placed: dict[Ref, list[Placement]] = {}
        self.pending: dict[Ref, list[str]] = {}
        self.misplaced: set[Placement] = set()
        self.written: dict[Placement, FileChanges] = {}  # what each placement written this run changes
        self.rendered: dict[str, FileChanges] = {}  # the aggregated file of each Destination rendered
        self.only = None if self.full else self._partial_paths()
        self.after: LoadedPlatform = load_platform(GitTreeSource(repo, self.to_sha, self.only), self.settings)

    # -- helpers ---------------------------------------------------------------

    def record(self, ref: Ref) -> ObjectRecord:
        if ref not in self.records:
            rec = self.bk.get(ref) or ObjectRecord(ref)
            self.records[ref] = rec
            self.old_digests[ref] = dict(rec.data.get("digests") or {})
        return self.records[ref]

    def owned(self, ref: Ref) -> dict[str, Work]:
        """The object's current Works, loaded from bookkeeping on first use."""
        if ref not in self.works:
            rec = self.record(ref)
            self.works[ref] = self.bk.get_works(rec.works)
        return self.works[ref]

    def _rebuild(self, *bodies: dict[str, Any]) -> LoadedPlatform:
        return rebuild(list(bodies), self.after.root or self.repo, self.settings)

    def _partial_paths(self) -> frozenset[str] | None:
        """The files an incremental run must read (bot.reconcile_scope), or None for all."""
        assert self.from_sha
        files = set()
        for ref in self.attention_refs:
            path = self.record(ref).data.get("file")
            if ref.kind != PROMISE and ref.kind != DESTINATION and not path:
                return None
            if path:
                files.add(path)
        return partial_paths(self.repo, self.from_sha, self.to_sha, files)

    def _candidates(self) -> set[Ref] | None:
        """Refs to look at in an incremental run; None means every object (full run)."""
        if self.full:
            return None
        before = load_platform(GitTreeSource(self.repo, self.from_sha, self.only), self.settings)
        changes = detect_changes(before, self.after)
        refs = {c.ref for group in (changes.promises, changes.requests, changes.destinations)
                for c in group}
        return refs | self.attention_refs

    # -- the run -------------------------------------------------------------------

    def run(self) -> ReconcileReport:
        candidates = self._candidates()
        dest_changes = self._destination_changes()
        phase1, available, blocked, failed_promise_deletes = self._plan_promises()
        self._execute(phase1)
        for outcome in self.outcomes:
            if outcome.task.wtype == "promise" and outcome.task.action == "configure" and outcome.succeeded:
                available.add(outcome.task.promise.name)
            if outcome.task.action == "delete" and not outcome.succeeded:
                failed_promise_deletes.add(outcome.task.promise.name)
        phase2 = self._plan_requests(candidates, available, blocked, failed_promise_deletes)
        self._execute(phase2)
        crash_point("after-pipelines")
        writes = WriteSet(self._open_store)
        placed = self._schedule_and_layout(writes, dest_changes)
        writes.run(self._message(), {EVENT_TRAILER: f"reconcile {self.to_sha[:12]}"}, dry_run=self.dry_run)
        report = ReconcileReport(self.from_sha, self.to_sha, self.full, self.outcomes,
                                 list(writes.batches.values()))
        if self.dry_run:
            report.statuses = {ref: rec.status for ref, rec in self.records.items()}
            return report
        crash_point("after-store-write")
        self._record_placements(placed, writes)
        report.statuses = {ref: rec.status for ref, rec in self.records.items() if ref not in self.deleted}
        report.bookkeeping_commit = self._commit_bookkeeping(report)
        return report

    def _message(self) -> str:
        runs = len(self.outcomes)
        return f"promisebot: reconcile platform {self.to_sha[:12]} ({runs} workflow run{'s' * (runs != 1)})"

    def _execute(self, tasks: list[Task]) -> None:
        if not tasks:
            return
        total, done, lock = len(tasks), 0, threading.Lock()

        def on_done(outcome: Outcome) -> None:
            nonlocal done
            with lock:
                done += 1
                if self.progress:
                    self.progress(outcome.task.label, done, total)

        statuses = [(t, self.record(t.ref).status) for t in tasks]
        for outcome in run_tasks(self.runner, self.settings.runner, statuses, on_done):
            self.outcomes.append(outcome)
            self._fold(outcome)

    def _fold(self, outcome: Outcome) -> None:
        task, rec = outcome.task, self.record(outcome.task.ref)
        if task.action == "configure":
            fold_configure(rec, outcome, self.owned(task.ref))
            if outcome.suspended:
                self.attention.add(task.ref)
            return
        if outcome.succeeded:
            self._forget(task.ref)
        else:
            rec.status = delete_failed(outcome.status or rec.status, outcome.suspended)
            rec.logs = outcome.logs
            self.attention.add(task.ref)

    def _forget(self, ref: Ref) -> None:
        """The object is gone: all its Works (and so their files) go too."""
        self.owned(ref).clear()
        self.deleted.add(ref)

    # -- phase 1: Promises -------------------------------------------------------

    def _requirement_states(self, promise_name: str) -> list[dict[str, str]]:
        promise = self.after.promises[promise_name]
        states = []
        for req in promise.required_promises:
            name, version = req.get("name", ""), req.get("version", "")
            dep = self.after.promises.get(name)
            if dep is None:
                state = "Requirement not installed"
            elif version and dep.labels.get(PROMISE_VERSION_LABEL, "") != version:
                state = "Requirement not installed at the specified version"
            else:
                state = "Requirement installed"
            states.append({"name": name, "version": version, "state": state})
        return states

    def _plan_promises(self) -> tuple[list[Task], set[str], set[str], set[str]]:
        tasks: list[Task] = []
        available: set[str] = set()
        blocked: set[str] = set()
        for promise in sorted(self.after.promises.values(), key=lambda p: p.name):
            rec = self.record(promise.ref)
            rec.data["body"] = promise.body
            if promise.api:
                rec.data["requestKind"] = promise.api.request_kind
            states = self._requirement_states(promise.name)
            rec.status = promise_requirements(rec.status, states)
            if any(s["state"] != "Requirement installed" for s in states):
                blocked.add(promise.name)
                continue
            if is_paused(promise):
                rec.status = paused(rec.status)
                continue
            works = self.owned(promise.ref)
            static = layout.static_dependencies_work(promise)
            static_key = f"{promise.name}/static"
            if static:
                works[static.key] = static
            else:
                works.pop(static_key, None)
            key = promise_cache_key(promise)
            if not promise.pipelines("promise", "configure"):
                for k in [k for k, w in works.items() if w.pipeline]:
                    del works[k]
                rec.cache_key = key
                available.add(promise.name)
                continue
            reason, start = configure_reason(key, promise.labels, rec, now=self.now,
                                             interval_seconds=self.settings.reconcile_interval_seconds,
                                             periodic=self.full)
            if reason:
                tasks.append(Task(promise.ref, promise, "promise", "configure", reason, key, start_at=start))
            elif configure_succeeded(rec.status):
                available.add(promise.name)
        failed_deletes: set[str] = set()
        for ref in self.bk.refs(PROMISE):
            if ref.name in self.after.promises:
                continue
            rec = self.record(ref)
            old = self._rebuild(rec.data.get("body") or {}).promises.get(ref.name)
            if old is None:
                self._forget(ref)
                continue
            if old.pipelines("promise", "delete"):
                tasks.append(Task(ref, old, "promise", "delete", DELETED, ""))
            else:
                self._forget(ref)
        return tasks, available, blocked, failed_deletes

    # -- phase 2: requests ---------------------------------------------------------

    def _deleted_request_refs(self, candidates: set[Ref] | None) -> list[Ref]:
        """Recorded requests no longer in the platform: deleted ones, and every request of a
        deleted Promise (§4.3 step 3)."""
        gone = {r.name for r in self.bk.refs(PROMISE) if r.name not in self.after.promises}
        kinds = {p.api.request_kind: p.name for p in self.after.promises.values() if p.api}
        for name in gone:
            kind = self.record(Ref(PROMISE, name)).data.get("requestKind")
            if kind:
                kinds[kind] = name
        out: set[Ref] = set()
        for kind, promise_name in sorted(kinds.items()):
            if candidates is None or promise_name in gone:
                out |= {r for r in self.bk.refs(kind) if r not in self.after.requests}
        if candidates is not None:
            out |= {r for r in candidates if r.kind in kinds and r not in self.after.requests and self.bk.has(r)}
        return sorted(out)

    def _plan_requests(self, candidates: set[Ref] | None, available: set[str], blocked: set[str],
                       failed_promise_deletes: set[str]) -> list[Task]:
        tasks: list[Task] = []
        promise_hashes: dict[str, str] = {}
        self.bk.get_many([r for r in self.after.requests if candidates is None or r in candidates])  # one read
        for req in sorted(self.after.requests.values(), key=lambda r: r.ref):
            if candidates is not None and req.ref not in candidates:
                continue
            promise = self.after.promises.get(req.promise)
            if promise is None:
                continue
            rec = self.record(req.ref)
            rec.data["body"] = req.body
            rec.data["promise"] = req.promise
            rec.data["file"] = req.source.file
            if req.promise in blocked:
                rec.status = requirements_not_installed(rec.status)
                self.attention.add(req.ref)
                continue
            if is_paused(promise, req):
                rec.status = paused(rec.status)
                self.attention.add(req.ref)
                continue
            if req.promise not in available:
                rec.status = waiting_for_promise(rec.status, req.promise,
                                                 "its configure workflow has not succeeded")
                self.attention.add(req.ref)
                continue
            if promise.name not in promise_hashes:
                promise_hashes[promise.name] = spec_hash(promise)
            key = request_cache_key(promise, req, promise_hashes[promise.name])
            if not promise.pipelines("resource", "configure"):
                if rec.works:
                    self.owned(req.ref).clear()
                rec.cache_key = key
                continue
            reason, start = configure_reason(key, req.labels, rec, now=self.now,
                                             interval_seconds=self.settings.reconcile_interval_seconds,
                                             periodic=self.full)
            problems = self._request_errors(req) if reason else []
            if problems:
                rec.status = invalid(rec.status, problems)
                continue
            if reason:
                tasks.append(Task(req.ref, promise, "resource", "configure", reason, key, request=req,
                                  start_at=start))
        for ref in self._deleted_request_refs(candidates):
            rec = self.record(ref)
            promise_name = rec.data.get("promise", "")
            if promise_name in failed_promise_deletes:
                continue  # §4.3: requests are deleted only after the promise delete pipeline
            promise = self.after.promises.get(promise_name)
            promise_body = promise.body if promise else self.record(Ref(PROMISE, promise_name)).data.get("body")
            rebuilt = self._rebuild(promise_body or {}, rec.data.get("body") or {})
            old_promise = rebuilt.promises.get(promise_name)
            old_req = rebuilt.requests.get(ref)
            if old_promise and old_req and old_promise.pipelines("resource", "delete"):
                tasks.append(Task(ref, old_promise, "resource", "delete", DELETED, "", request=old_req))
            else:
                self._forget(ref)
        return tasks

    def _request_errors(self, req: ResourceRequest) -> list[str]:
        """Validation errors of one request against its Promise's API (bot.validation)."""
        promise = self.after.promises[req.promise]
        report = Report(self.after.documents.get(req.source), req.source)
        check_request(req, promise, report)
        return [f"{p.field}: {p.message}" if p.field else p.message
                for p in report.problems if p.severity == "error"]

    # -- destinations ---------------------------------------------------------------

    def _target_now(self, name: str) -> Target | None:
        dest = self.after.destinations.get(name)
        store = self.after.state_stores.get(dest.state_store_ref) if dest else None
        return Target(dest, store) if dest and store else None

    def _target_recorded(self, name: str) -> Target | None:
        rec = self.record(Ref(DESTINATION, name))
        body, store_body = rec.data.get("body"), rec.data.get("storeBody")
        if not body or not store_body:
            return None
        rebuilt = self._rebuild(body, store_body)
        dest = rebuilt.destinations.get(name)
        store = rebuilt.state_stores.get(dest.state_store_ref) if dest else None
        return Target(dest, store) if dest and store else None

    def _destination_changes(self) -> dict[str, str]:
        """name -> "created" | "moved" | "relabelled" | "deleted" | "unchanged" (§3.3-§3.5)."""
        out: dict[str, str] = {}
        for name, dest in self.after.destinations.items():
            rec = self.record(dest.ref)
            store = self.after.state_stores.get(dest.state_store_ref)
            if not rec.data.get("body"):
                out[name] = "created"
            elif rec.data.get("body", {}).get("spec") != dest.body.get("spec") or (
                    store is not None and rec.data.get("storeBody", {}).get("spec") != store.body.get("spec")):
                out[name] = "moved"
            elif rec.data.get("labels") != dest.labels:
                out[name] = "relabelled"
            else:
                out[name] = "unchanged"
        for ref in self.bk.refs(DESTINATION):
            if ref.name not in self.after.destinations:
                out[ref.name] = "deleted"
        return out

    # -- scheduling and layout -----------------------------------------------------------

    def _all_live_refs(self) -> list[Ref]:
        refs = {p.ref for p in self.after.promises.values()} | set(self.after.requests)
        if self.only is not None:  # a partial snapshot: unchanged requests are known from bookkeeping
            for p in self.after.promises.values():
                if p.api:
                    refs |= set(self.bk.refs(p.api.request_kind))
        return sorted(refs - self.deleted)

    def _schedule_and_layout(self, writes: WriteSet, dest_changes: dict[str, str]) -> dict[Ref, list[Placement]]:
        """Decide every placement to write or remove and add it to `writes`; returns the new
        placements of each touched object. A full run writes every placement and every
        aggregated file again, so files changed or deleted by hand are restored (drift repair,
        §3.8); the stores skip unchanged files, so an undrifted store gets no commit."""
        if self.full or any(c != "unchanged" for c in dest_changes.values()):
            live = self._all_live_refs()
            self.bk.get_many(live)
            for ref in live:
                self.owned(ref)
        touched = set(self.works)
        old_placements: dict[Ref, list[PlacementRecord]] = {r: list(self.record(r).placements) for r in touched}
        changed_keys: set[str] = set()
        for ref in touched:
            digests = {k: work_digest(w) for k, w in self.works[ref].items()}
            old = self.old_digests.get(ref, {})
            changed_keys |= {k for k, d in digests.items() if old.get(k) != d}
            self.record(ref).data["digests"] = digests
        all_works = [w for ref in sorted(touched) for w in self.works[ref].values()]
        existing = [p.placement for ps in old_placements.values() for p in ps]
        result = schedule(all_works, self.after.destinations, existing)
        work_by_key = {w.key: w for w in all_works}
        owner = {w.key: ref for ref in touched for w in self.works[ref].values()}
        placed: dict[Ref, list[Placement]] = {ref: [] for ref in touched}
        for p in result.placements:
            placed[owner[p.work_key]].append(p)
        self.pending = {owner[g.work_key]: [] for g in result.pending}
        for g in result.pending:
            self.pending[owner[g.work_key]].append(g.message)
        self.misplaced = result.misplaced

        old_set = set(existing)
        aggregated = {name for name, d in self.after.destinations.items()
                      if self.full and d.filepath_mode == "aggregatedYAML"}
        for p in result.placements:
            target = self._target_now(p.destination)
            if target is None:
                continue
            moved = dest_changes.get(p.destination) == "moved"
            if not self.full and p in old_set and p.work_key not in changed_keys and not moved:
                continue
            if target.aggregated:
                aggregated.add(p.destination)
            else:
                group = next(g for g in work_by_key[p.work_key].groups if g.id == p.group_id)
                self.written[p] = writes.place(target, work_by_key[p.work_key], group)
        # Removals: placements no longer wanted, and everything on moved Destinations' old place.
        new_set = set(result.placements)
        old_works: dict[str, Work] = {}
        for records in old_placements.values():
            for rec_p in records:
                p = rec_p.placement
                status = dest_changes.get(p.destination, "unchanged")
                if status == "deleted" or (p in new_set and status != "moved"):
                    continue
                target = self._target_recorded(p.destination) if status == "moved" else self._target_now(p.destination)
                if target is None:
                    continue
                if target.aggregated:
                    aggregated.add(p.destination)
                    continue
                work = old_works.get(p.work_key) or self.bk.get_work(p.work_key)
                if work is not None:
                    old_works[p.work_key] = work
                    writes.remove(target, work, p.group_id)
        self.placed = placed
        self._destinations(writes, dest_changes, aggregated)
        return placed

    def _destinations(self, writes: WriteSet, dest_changes: dict[str, str], aggregated: set[str]) -> None:
        for name, change in sorted(dest_changes.items()):
            rec = self.record(Ref(DESTINATION, name))
            if change == "deleted":
                target = self._target_recorded(name)
                if target is not None:
                    writes.cleanup(target, self._placements_on(name))
                self.deleted.add(rec.ref)
                continue
            target = self._target_now(name)
            if target is None:
                dest = self.after.destinations[name]
                rec.status = destination_ready(rec.status, False, "StateStoreNotFound",
                                               f"{dest.state_store_kind}/{dest.state_store_name}: not found")
                continue
            if change in ("created", "moved") or self.full:
                writes.canaries(target)
            if name in aggregated:
                self.rendered[name] = writes.render_aggregated(target, self._aggregated_items(name))
            rec.data.update(body=target.dest.body, storeBody=target.store.body, labels=target.dest.labels)

    def _placements_on(self, destination: str) -> list[tuple[Work, str]]:
        """Every recorded placement on a Destination, with its Work (as last written)."""
        out = []
        for ref in self.bk.refs():
            if ref.kind == DESTINATION:
                continue
            for p in self.record(ref).placements:
                if p.destination == destination:
                    work = self.bk.get_work(p.work_key)
                    if work is not None:
                        out.append((work, p.group_id))
        return out

    def _aggregated_items(self, destination: str) -> list[tuple[str, Any]]:
        """(placement name, group) of every placement now on an aggregatedYAML Destination."""
        items = []
        live = self._all_live_refs()
        self.bk.get_many([r for r in live if r not in self.works])
        for ref in live:
            if ref in self.works:
                works, current = self.works[ref], self.placed.get(ref, [])
            else:
                current = [p.placement for p in self.record(ref).placements]
                works = self.bk.get_works([p.work_key for p in current if p.destination == destination])
            for p in current:
                work = works.get(p.work_key)
                if p.destination != destination or work is None:
                    continue
                group = next((g for g in work.groups if g.id == p.group_id), None)
                if group is not None:
                    items.append((layout.placement_name(work, p.group_id, destination), group))
        return items

    def _open_store(self, store: Any) -> Any:
        git_dir = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], cwd=self.repo,
                                 capture_output=True, text=True, check=True).stdout.strip()
        secrets = SecretResolver(Path(self.settings.secrets_dir) if self.settings.secrets_dir else None,
                                 os.environ)
        return open_store(store, platform_root=self.after.root or self.repo, secrets=secrets,
                          cache_dir=Path(git_dir) / "promisebot" / "stores")

    # -- bookkeeping -----------------------------------------------------------------

    def _record_placements(self, placed: dict[Ref, list[Placement]], writes: WriteSet) -> None:
        results = {key: b for key, b in writes.batches.items()}
        for ref, placements in placed.items():
            rec = self.record(ref)
            before = {p.placement: p for p in rec.placements}
            new_records = []
            failed = False
            for p in placements:
                target = self._target_now(p.destination)
                skey = target.key if target else ""
                batch = results.get(skey)
                if batch and batch.error:
                    failed = True
                written = self.written.get(p) or self.rendered.get(p.destination)
                commit = None
                if batch and batch.result and batch.result.revision and written and touches(written, batch.result):
                    commit = batch.result.revision  # the commit that last changed this placement's files
                old = before.get(p)
                new_records.append(PlacementRecord(p.work_key, p.group_id, p.destination, skey,
                                                   commit or (old.commit if old else None),
                                                   p in self.misplaced))
            rec.placements = new_records
            rec.works = sorted(self.works[ref])
            if failed:
                rec.cache_key = None  # the outputs did not land: run again next time
                self.attention.add(ref)
            is_promise = ref.kind == PROMISE
            rec.status = works_outcome(rec.status, self.pending.get(ref, []),
                                       [str(p.placement) for p in rec.placements if p.misplaced],
                                       promise=is_promise)
        for name in self.after.destinations:
            rec = self.record(Ref(DESTINATION, name))
            target = self._target_now(name)
            if target is None:
                continue
            batch = results.get(target.key)
            if batch and batch.error:
                rec.status = destination_ready(rec.status, False, "StateStoreWriteFailed",
                                               f"Failed to write test documents to State Store: {batch.error}")
            elif target.dest.init_workloads:
                rec.status = destination_ready(rec.status, True, "TestDocumentsWritten",
                                               "Test documents written to State Store")
            else:
                rec.status = destination_ready(rec.status, True, "DestinationReady", "Destination is ready")

    def _commit_bookkeeping(self, report: ReconcileReport) -> str | None:
        for ref, rec in self.records.items():
            if ref in self.deleted:
                self.bk.delete(ref)
                continue
            if ref.kind != DESTINATION and not rec.status and not rec.works and rec.cache_key is None:
                continue
            self.bk.put(rec)
        kept = {k for works in self.works.values() for k in works}
        for ref, works in self.works.items():  # only objects whose Works were loaded can change them
            old = self.old_digests.get(ref, {})
            for key, work in works.items():
                if old.get(key) != self.record(ref).data.get("digests", {}).get(key):
                    self.bk.put_work(work)
            for key in set(old) - kept:
                self.bk.delete_work(key)
        meta: dict[str, Any] = {"revision": self.to_sha,
                                "attention": sorted(_ref_json(r) for r in self.attention - self.deleted)}
        if self.periodic:  # an explicit --all does not move the periodic clock: no commit when unchanged
            meta["lastFullReconcile"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.bk.set_meta(**meta)
        trailers = {EVENT_TRAILER: f"reconcile {self.to_sha[:12]}"}
        for key, rev in report.commits.items():
            trailers[f"Promisebot-Store-{key.split('/')[0]}"] = f"{key.split('/', 1)[1]} {rev}"
        return self.bk.commit(self._message(), trailers)
