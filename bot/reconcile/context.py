"""What one reconcile of one platform revision works from and has decided so far: the snapshot
(whole, or partial for an incremental run: bot.reconcile.scope), the settings, the bookkeeping
branch, and the records and Works of the objects it touches. `RunContext.open` reads it all; the
phases (bot.reconcile.phases) and the workflow outcomes update the records and Works, the layout
(bot.reconcile.placements) only reads them, and recording (bot.reconcile.recording) writes what
the layout returned into them, then commits them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.errors import PromisebotError
from bot.gitcmd import git, rev_sha
from bot.kratix.conditions import invalid, valid_again
from bot.kratix.objectyaml import rebuild
from bot.model.objects import DESTINATION, GIT_STATE_STORE, PROMISE, STATE_STORE_KINDS, Ref, StateStore
from bot.model.records import ObjectRecord, ref_from_json
from bot.model.works import Work
from bot.platform.loader import GitTreeSource, LoadedPlatform, load_platform, read_settings
from bot.reconcile.changes import detect_changes
from bot.reconcile.decide import due_for_periodic, now_utc, parse_time
from bot.reconcile.scope import partial_paths
from bot.reconcile.screen import Screening, screen
from bot.reconcile.writes import Target
from bot.secrets import SecretResolver
from bot.settings import SETTINGS_FILE, Settings, state_branch_conflict
from bot.state.bookkeeping import Bookkeeping
from bot.statestores.base import StateStoreWriter, open_store


def safe_name(name: str) -> bool:
    """Whether a name can be one path segment of a bookkeeping record."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _swap(table: dict[Any, Any], key: Any, replacement: Any) -> None:
    if replacement is None:
        table.pop(key, None)
    else:
        table[key] = replacement


class ReconcileError(PromisebotError):
    """The reconcile could not start (unreadable revision, invalid settings)."""


def rev_parse(repo: Path, rev: str) -> str:
    sha = rev_sha(repo, rev)
    if sha is None:
        raise ReconcileError(f"cannot resolve revision {rev!r} in {repo}")
    return sha


def _valid_settings(repo: Path, to_sha: str) -> Settings:
    """The settings at `to_sha`; a setting promisebot would misread (the state branch, secrets)
    stops everything."""
    settings, problems = read_settings(GitTreeSource(repo, to_sha, frozenset({SETTINGS_FILE})))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ReconcileError("the settings are invalid; fix them first (promisebot validate):\n  "
                             + "\n  ".join(str(p) for p in errors))
    return settings


def _check_state_branch(repo: Path, state: str, to_rev: str) -> None:
    """Bookkeeping never commits to the branch being reconciled."""
    current = git(repo, "symbolic-ref", "-q", "--short", "HEAD", ok=(0, 1)).decode().strip()
    if any(state_branch_conflict(state, branch) for branch in (current, to_rev, to_rev.removeprefix("origin/"))
           if branch):
        raise ReconcileError(f"stateBranch {state!r} is the branch being reconciled: promisebot would commit "
                             f"its bookkeeping onto the platform itself; set another stateBranch in {SETTINGS_FILE}")


def _check_store_branches(settings: Settings, platform: LoadedPlatform) -> None:
    """Bookkeeping never commits to a branch a GitStateStore writes to."""
    for store in platform.state_stores.values():
        branch = store.spec.get("branch")
        if store.kind == GIT_STATE_STORE and isinstance(branch, str) and \
                state_branch_conflict(settings.state_branch, branch):
            raise ReconcileError(f"stateBranch {settings.state_branch!r} is the branch {store.kind} "
                                 f"{store.name} ({store.source}) writes to: set another stateBranch in "
                                 f"{SETTINGS_FILE}")


def _partial_paths(repo: Path, bk: Bookkeeping, from_sha: str, to_sha: str,
                   attention_refs: set[Ref]) -> frozenset[str] | None:
    """The files an incremental run must read (bot.reconcile.scope), or None for all: a request
    wanting another look is read from its recorded file (all files when that is not known)."""
    files = set()
    recorded_files = {ref: rec.file for ref, rec in bk.get_many(sorted(attention_refs)).items()}
    for ref in attention_refs:
        path = recorded_files.get(ref)
        if ref.kind not in (PROMISE, DESTINATION) and not path:
            return None
        if path:
            files.add(path)
    files |= set(bk.meta.get("invalidFiles") or [])  # reported again until fixed
    recorded = bk.meta.get("objectFiles") if bk.meta.get("revision") == from_sha else None
    return partial_paths(repo, from_sha, to_sha, files, set(recorded) if recorded else None)


class RunContext:
    """One reconcile of the platform repo `repo` at `to_sha`, from `from_sha` (the last reconciled
    commit unless given). `full`: every object and placement (--all); a run is also full when it
    has no `from` or the periodic reconcile is due (§4.7).

    `RunContext.open` reads all of it (revisions, settings, bookkeeping, the platform); the
    constructor only assigns. The run's working set, filled as the run goes (each step in
    bot.reconcile.engine `_run` order): the records it reads (`record`) and the phases and
    outcomes update; the current Works of the objects it touches (`owned`); objects `deleted`
    (their record goes) and objects that want another look next time (`attention`).
    """

    def __init__(self, repo: Path, *, to_sha: str, from_sha: str | None, settings: Settings, bk: Bookkeeping,
                 now: datetime, periodic: bool, full: bool, attention_refs: set[Ref], only: frozenset[str] | None,
                 after: LoadedPlatform, screening: Screening) -> None:
        self.repo = repo
        self.to_sha = to_sha
        self.from_sha = from_sha
        self.settings = settings
        self.bk = bk
        self.now = now
        self.periodic = periodic  # due (or no `from`): this run moves the periodic clock (meta.json)
        self.full = full
        self.attention_refs = attention_refs  # objects the last run wanted looked at again
        self.rerun: frozenset[Ref] = frozenset()  # objects to run again whatever their cache key says
        self.only = only  # the files read (an incremental run), None: all of them
        self.after = after
        self.screening = screening
        self.records: dict[Ref, ObjectRecord] = {}
        self.works: dict[Ref, dict[str, Work]] = {}  # current Works of touched objects
        self.deleted: set[Ref] = set()  # objects whose record goes
        self.attention: set[Ref] = set()  # objects that want another look next time

    @classmethod
    def open(cls, repo: Path, from_rev: str | None, to_rev: str, full: bool,
             rerun: frozenset[Ref] = frozenset()) -> RunContext:
        """Everything a run of `repo` at `to_rev` works from, read: the revisions, the settings,
        bookkeeping (synced with the remote), the platform (partial for an incremental run) and
        its validation, with invalid objects set aside. Raises ReconcileError when the run cannot
        start (an unknown revision, invalid settings, a stateBranch promisebot must not write)."""
        to_sha = rev_parse(repo, to_rev)
        settings = _valid_settings(repo, to_sha)
        _check_state_branch(repo, settings.state_branch, to_rev)
        bk = Bookkeeping.open(repo, settings.state_branch)
        # The last reconciled commit; a clone that lacks it (shallow) runs in full, which
        # compares every cache key and so comes to the same plan.
        recorded = bk.meta.get("revision")
        from_sha = rev_parse(repo, from_rev) if from_rev else recorded and rev_sha(repo, recorded) or None
        now = now_utc()
        last_full = parse_time(bk.meta.get("lastFullReconcile"))
        periodic = due_for_periodic(last_full.timestamp() if last_full else None, now.timestamp(),
                                    settings.reconcile_interval_seconds) or not from_sha
        full = full or periodic
        attention_refs = {ref_from_json(entry) for entry in bk.meta.get("attention") or []} | rerun
        only = None if full or not from_sha else _partial_paths(repo, bk, from_sha, to_sha, attention_refs)
        after = load_platform(GitTreeSource(repo, to_sha, only), settings)
        ctx = cls(repo, to_sha=to_sha, from_sha=from_sha, settings=settings, bk=bk, now=now, periodic=periodic,
                  full=full, attention_refs=attention_refs, only=only, after=after, screening=screen(after))
        ctx.rerun = rerun
        ctx._set_aside_invalid()
        _check_store_branches(settings, ctx.after)
        return ctx

    def _set_aside_invalid(self) -> None:
        """Objects validation rejects are never acted on (bot.reconcile.screen): one with a last
        valid version keeps it, a new one is left out; objects valid again lose the mark."""
        after = self.after
        for ref, problems in sorted(self.screening.invalid.items(), key=lambda item: item[0].kind != PROMISE):
            if ref.kind not in (PROMISE, DESTINATION, *STATE_STORE_KINDS):
                if not safe_name(ref.name):
                    after.requests.pop(ref, None)  # cannot even be named in a record
                continue  # a request stays, and its phase records it invalid (bot.reconcile.phases)
            recorded = self._recorded_body(ref)
            rebuilt = self.rebuild(*recorded) if recorded else None
            if ref.kind == PROMISE:
                _swap(after.promises, ref.name, rebuilt.promises.get(ref.name) if rebuilt else None)
            elif ref.kind == DESTINATION:
                _swap(after.destinations, ref.name, rebuilt.destinations.get(ref.name) if rebuilt else None)
            else:
                _swap(after.state_stores, ref, rebuilt.state_stores.get(ref) if rebuilt else None)
            if recorded and ref.kind not in STATE_STORE_KINDS:
                rec = self.record(ref)
                rec.status = invalid(rec.status, [f"{p.source}: {p.field}: {p.message}" for p in problems])
                rec.invalid = True
                self.attention.add(ref)
        for ref in self.attention_refs - set(self.screening.invalid):
            by_kind: dict[str, Mapping[str, object]] = {PROMISE: after.promises,
                                                        DESTINATION: after.destinations}
            loaded = by_kind.get(ref.kind, {})
            if ref.name in loaded:  # (requests: bot.reconcile.phases)
                rec = self.record(ref)
                if rec.invalid:
                    rec.invalid = False
                    rec.status = valid_again(rec.status)

    def _recorded_body(self, ref: Ref) -> list[dict[str, Any]]:
        """The last valid version of a Promise, Destination or State Store, as the bodies
        `rebuild` needs; [] if none."""
        if ref.kind in STATE_STORE_KINDS:
            for dest in self.after.destinations.values():
                if dest.state_store_ref == ref and self.bk.has(dest.ref):
                    body = self.record(dest.ref).store_body
                    if body:
                        return [body]
            return []
        body = self.record(ref).body if self.bk.has(ref) else None
        return [body] if body else []

    def object_files(self) -> list[str]:
        """The files of the Kratix objects (Promises, Destinations, State Stores) at `to`."""
        after = self.after
        sources = [*(o.source for o in after.promises.values()),
                   *(o.source for o in after.destinations.values()),
                   *(o.source for o in after.state_stores.values())]
        return sorted({s.file for s in sources})

    def candidates(self) -> set[Ref] | None:
        """Refs to look at in an incremental run; None means every object (full run)."""
        if self.full:
            return None
        assert self.from_sha is not None  # `open` makes a run without a `from` a full one
        before = load_platform(GitTreeSource(self.repo, self.from_sha, self.only), self.settings)
        return detect_changes(before, self.after).refs() | self.attention_refs

    # -- records and Works -------------------------------------------------------

    def record(self, ref: Ref) -> ObjectRecord:
        """The object's record, read from bookkeeping on first use (a new one if none)."""
        if ref not in self.records:
            self.records[ref] = self.bk.get(ref) or ObjectRecord(ref)
        return self.records[ref]

    def load_records(self, refs: Iterable[Ref]) -> None:
        """Read the records of `refs` not read yet in one batch, for `record` to find."""
        missing = [ref for ref in refs if ref not in self.records]
        self.records.update(self.bk.get_many(missing))

    def owned(self, ref: Ref) -> dict[str, Work]:
        """The object's current Works by key, read from bookkeeping on first use."""
        if ref not in self.works:
            self.works[ref] = self.bk.get_works(self.record(ref).works)
        return self.works[ref]

    def forget(self, ref: Ref) -> None:
        """The object is gone: all its Works (and so their files) go too."""
        self.owned(ref).clear()
        self.deleted.add(ref)

    def live_refs(self) -> list[Ref]:
        """Every Promise and request of the platform now; in a partial snapshot the requests not
        read are known from bookkeeping."""
        refs = {p.ref for p in self.after.promises.values()} | set(self.after.requests)
        if self.only is not None:
            for p in self.after.promises.values():
                if p.api:
                    refs |= set(self.bk.refs(p.api.request_kind))
        return sorted(refs - self.deleted)

    def rebuild(self, *bodies: dict[str, Any]) -> LoadedPlatform:
        """Typed objects from recorded bodies (deleted objects, Destinations as they were)."""
        return rebuild(list(bodies), self.after.root or self.repo, self.settings)

    # -- Destinations and their stores ------------------------------------------------

    def target_now(self, name: str) -> Target | None:
        dest = self.after.destinations.get(name)
        store = self.after.state_stores.get(dest.state_store_ref) if dest else None
        return Target(dest, store) if dest and store else None

    def target_recorded(self, name: str) -> Target | None:
        """The Destination and its store as last recorded (where a moved or deleted one was)."""
        rec = self.record(Ref(DESTINATION, name))
        body, store_body = rec.body, rec.store_body
        if not body or not store_body:
            return None
        rebuilt = self.rebuild(body, store_body)
        dest = rebuilt.destinations.get(name)
        store = rebuilt.state_stores.get(dest.state_store_ref) if dest else None
        return Target(dest, store) if dest and store else None

    def open_store(self, store: StateStore) -> StateStoreWriter:
        git_dir = git(self.repo, "rev-parse", "--absolute-git-dir").decode().strip()
        secrets_dir = self.settings.secrets_dir
        secrets = SecretResolver(Path(secrets_dir) if secrets_dir else None, os.environ)
        return open_store(store, platform_root=self.after.root or self.repo, secrets=secrets,
                          cache_dir=Path(git_dir) / "promisebot" / "stores")
