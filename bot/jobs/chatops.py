"""The job of a comment on a pull/merge request: its ChatOps commands, each authorized when the
job runs, against the policy on the default branch, then run in order (docs/chatops.md).

    plan [REF...]   plan the change again (the objects named run their workflows again)
    apply           check the apply requirements, take the Destination locks, merge; the merge
                    event applies it (a stale plan is re-planned first)
    status [REF]    where the change's objects (or the one named) landed, from bookkeeping
    rerun REF       run the named request's workflows again on the default branch (a commit-free
                    manual reconciliation), under the platform's lock
    ok-to-test      approve the current head of an untrusted change: its pipelines may run
    unlock          release the Destination locks this change holds, and those held by changes
                    that are gone
    help            the commands, and which of them the commenter may run

Comments by bot accounts and by promisebot itself are ignored; a comment with no command is
ignored silently; an accepted one gets an 👀 reaction at once, then a reply or the updated plan.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.chatops import grammar, replies
from bot.chatops.grammar import Command
from bot.chatops.policy import Decision, Policy, PolicyError, authorize, is_team
from bot.chatops.requirements import ApplyFacts, check_apply, stale_plan
from bot.errors import PromisebotError
from bot.forges import comment as comments
from bot.forges.base import Change, Event, Forge, ForgeError, Repo
from bot.gitcmd import git, git_environment, rev_sha
from bot.jobs.destlocks import Holder
from bot.jobs.landed import changed_refs
from bot.jobs.locks import LockBusy
from bot.jobs.planning import plan
from bot.jobs.policyfile import read_policy
from bot.jobs.repos import auth_environment
from bot.jobs.services import Services
from bot.jobs.steps import (
    APPLY_CONTEXT,
    OK_TO_TEST_CONTEXT,
    PLAN_CONTEXT,
    reply,
    repo_key,
    secrets,
    set_status,
    sync,
)
from bot.model.objects import Ref
from bot.platform.loader import load_platform, read_settings
from bot.platform.sources import FileError, GitTreeSource
from bot.reconcile.engine import reconcile
from bot.redact import redact
from bot.report.landed import where_landed
from bot.settings import SETTINGS_FILE, Settings, load_settings
from bot.state.bookkeeping import Bookkeeping

log = logging.getLogger("promisebot.chatops")


@dataclass
class Session:
    """One comment's commands being run: who asked, where, under which policy."""

    event: Event
    repo: Repo
    forge: Forge
    services: Services
    path: Path
    policy: Policy
    policy_error: PolicyError | None
    received_at: float | None
    _role: str | None = None
    _teams: dict[str, bool] = field(default_factory=dict)

    @property
    def login(self) -> str:
        return self.event.commenter

    def role(self) -> str:
        if self._role is None:
            self._role = self.forge.permission(self.repo, self.login)
        return self._role

    def member_of(self, team: str) -> bool:
        if team not in self._teams:
            try:
                self._teams[team] = self.forge.member_of(self.repo, self.login, team)
            except ForgeError as exc:
                if exc.retryable:
                    raise
                # a team that does not exist (or the credentials cannot see) allows nobody
                log.warning("team %s of the ChatOps policy cannot be read: %s", team, exc)
                self._teams[team] = False
        return self._teams[team]

    def decision(self, command: str) -> Decision:
        """Whether the commenter may run `command`, asked of the forge now (not when the
        comment arrived). An invalid policy allows only what anyone may run."""
        rule = self.policy.rule(command)
        teams = {t for t in rule.teams if self.member_of(t)}
        decision = authorize(rule, self.login, self.role(), teams, self.repo.full_name)
        if self.policy_error is not None and rule.permission != "none":
            return Decision(False, decision.needs)
        return decision

    def say(self, text: str) -> None:
        reply(self.forge, self.repo, self.event.number, text, self.services)


def handle_comment(event: Event, repo: Repo, forge: Forge, services: Services, received_at: float | None) -> str:
    if event.commenter_is_bot:
        return "ignored: a comment by a bot account"
    me = forge.whoami()
    if event.commenter.casefold() in {me.casefold(), me.removesuffix("[bot]").casefold()}:
        return "ignored: promisebot's own comment"
    parsed = grammar.parse(event.comment_body, bot_login=me)
    if parsed.empty:
        return "ignored: no command"
    forge.react(repo, event.number, event.comment_id, "eyes")
    path = sync(event, repo, forge, services, [])
    policy, error = read_policy(path, repo)
    session = Session(event, repo, forge, services, path, policy, error, received_at)
    if parsed.problems:  # nothing of a comment with a mistake runs: the commenter fixes it first
        session.say(replies.render_problems(session.login, parsed.problems, _decisions(session),
                                            secrets=secrets(services)))
        return f"{len(parsed.problems)} problem(s) answered; no command run"
    done: list[str] = []
    for index, command in enumerate(parsed.commands):
        step = f"command:{event.delivery}:{index}"
        if services.backend.memo.latest(step) is not None:
            continue  # done by an earlier attempt of this job (it went back to the queue for a lock)
        decision = session.decision(command.name)
        if not decision.allowed:
            if session.policy_error is not None:
                session.say(replies.render_policy_error(session.login, command.name, session.policy_error,
                                                        secrets=secrets(services)))
            else:
                session.say(replies.render_denied(session.login, command.name, decision, secrets=secrets(services)))
            done.append(f"{command.name}: denied")
            services.backend.memo.set_latest(step, "done")
            continue
        try:
            outcome = RUN[command.name](session, command)
        except ForgeError as exc:
            if exc.retryable:
                raise  # the queue retries the job; commands done already are not run again
            outcome = _could_not(session, command.name, exc)
        except PromisebotError as exc:
            outcome = _could_not(session, command.name, exc)
        done.append(f"{command.name}: {outcome}")
        services.backend.memo.set_latest(step, "done")
    return "; ".join(done)


def _could_not(session: Session, command: str, exc: Exception) -> str:
    text = redact(str(exc), secrets(session.services))
    log.error("%s could not finish: %s", command, text)
    session.say(replies.render_failed(session.login, command, text, secrets=secrets(session.services)))
    return f"could not finish: {text}"


def _decisions(session: Session) -> dict[str, Decision]:
    return {name: session.decision(name) for name in grammar.COMMANDS}


def _change(session: Session) -> Change:
    return session.forge.fetch_change(session.repo, session.event.number)


def _plan_event(session: Session, change: Change) -> Event:
    """The event a re-plan of the change's current head runs as (the same job as a push)."""
    return dataclasses.replace(session.event, kind="change_updated", head_sha=change.head_sha,
                               base_ref=change.base_ref, draft=False, author=change.author, url=change.url)


# -- the commands ------------------------------------------------------------------------------

def run_help(session: Session, command: Command) -> str:
    session.say(replies.render_help(session.login, _decisions(session), secrets=secrets(session.services)))
    return "help sent"


def run_plan(session: Session, command: Command) -> str:
    change = _change(session)
    if change.state != "open":
        session.say(replies.render_not_open(session.login, command.name, change.state))
        return f"not planned: the change is {change.state}"
    refs = [a.as_ref() for a in command.args]
    if refs and (unknown := _unknown_refs(session, change, refs, command.name)):
        return unknown
    session.services.backend.memo.set_latest(f"{session.repo.forge}:{session.repo.full_name}:{change.number}",
                                             change.head_sha)
    return plan(_plan_event(session, change), session.repo, session.forge, session.services,
                session.received_at, rerun=refs)


def run_ok_to_test(session: Session, command: Command) -> str:
    change = _change(session)
    if change.state != "open":
        session.say(replies.render_not_open(session.login, command.name, change.state))
        return f"not approved: the change is {change.state}"
    set_status(session.forge, session.repo, change.head_sha, OK_TO_TEST_CONTEXT, "success",
               f"pipelines allowed by {session.login} for this commit",
               session.forge.head_ref(change.number))
    session.say(replies.render_ok_to_test(session.login, change.head_sha, secrets=secrets(session.services)))
    return "approved " + change.head_sha[:12] + "; " + run_plan(session, dataclasses.replace(command, args=()))


def run_status(session: Session, command: Command) -> str:
    change = _change(session)
    settings = _settings(session.path, f"refs/remotes/origin/{session.repo.default_branch}")
    if command.args:
        refs = [command.args[0].as_ref()]
        removed: set[Ref] = set()
    else:
        if change.state == "merged" and change.merge_sha:
            old, new = f"{change.merge_sha}^1", change.merge_sha
        else:
            new = _fetch_head(session, change)
            old = git(session.path, "merge-base", f"refs/remotes/origin/{session.repo.default_branch}",
                      new).decode().strip()
        present, removed = changed_refs(session.path, old, new, settings.max_file_bytes)
        refs = sorted(present, key=str)
    records = Bookkeeping.open(session.path, settings.state_branch).get_many(sorted({*refs, *removed}, key=str))
    if command.args and refs[0] not in records:
        return _unknown(session, command.name, str(command.args[0]), _known_refs(session, None))
    rows = where_landed(refs, records, removed)
    session.say(replies.render_status(session.login, comments.render_landed(rows), {
        str(r): comments.reconciled_message(records[r].status) for r in refs if r in records},
        secrets=secrets(session.services)))
    return f"status of {len(rows)} placement(s)"


def run_rerun(session: Session, command: Command) -> str:
    ref = command.args[0].as_ref()
    if ref not in _known_refs(session, None):
        return _unknown(session, command.name, str(command.args[0]), _known_refs(session, None))
    forge, repo, services = session.forge, session.repo, session.services
    with services.backend.locks.try_hold(f"reconcile:{repo.forge}:{repo.full_name}"):
        path = sync(session.event, repo, forge, services, [])
        runner = services.runner_factory()
        try:
            with git_environment(auth_environment(forge.clone_credentials(repo))):
                report = reconcile(path, runner=runner, to_rev=f"refs/remotes/origin/{repo.default_branch}",
                                   rerun=[ref], trailers={"Promisebot-Rerun-By": session.login})
        finally:
            close = getattr(runner, "close", None)
            if close:
                close()
    state, text = comments.status_for(report, secrets=secrets(services))
    session.say(replies.render_rerun(session.login, str(ref), state, text, comments.render_landed(
        where_landed([ref], Bookkeeping.open(path, _settings(path, report.to_rev).state_branch).get_many([ref]))),
        secrets=secrets(services)))
    return f"reran {ref}: {state}"


def run_unlock(session: Session, command: Command) -> str:
    locks, key = session.services.backend.destination_locks, repo_key(session.repo)
    released = locks.release(key, session.event.number)
    facts = _plan_facts(session)
    for dest, holder in locks.holders(key, facts.destinations if facts else ()).items():
        if holder.number == session.event.number:
            continue
        other = session.forge.fetch_change(session.repo, holder.number)
        if other.state != "open" and locks.force_release(key, dest):
            released.append(dest)
    session.say(replies.render_unlocked(session.login, sorted(set(released))))
    return f"released {len(released)} lock(s)"


def run_apply(session: Session, command: Command) -> str:
    forge, repo, services = session.forge, session.repo, session.services
    change = _change(session)
    if change.state != "open":
        session.say(replies.render_not_open(session.login, command.name, change.state))
        return f"not applied: the change is {change.state}"
    base = rev_sha(session.path, f"refs/remotes/origin/{repo.default_branch}") or ""
    facts = _apply_facts(session, change, base)
    stale = stale_plan(facts)
    base_moved_only = facts.plan_head_sha == facts.head_sha and facts.plan_base_sha is not None
    if stale is not None and (not base_moved_only or "undiverged" in session.policy.apply.requirements):
        # What would be applied is not what was reviewed: plan it, and let the reviewers look.
        outcome = run_plan(session, dataclasses.replace(command, args=()))
        session.say(replies.render_replanned(session.login, stale, secrets=secrets(services)))
        return f"not applied: {stale}; re-planned ({outcome})"
    unmet = check_apply(session.policy, facts)
    if unmet:
        session.say(replies.render_unmet(session.login, unmet, secrets=secrets(services)))
        return f"not applied: {len(unmet)} requirement(s) unmet"
    holder = Holder(change.number, change.url, time.time())
    blocked = services.backend.destination_locks.acquire(repo_key(repo), facts.destinations, holder)
    if blocked:
        first = next(iter(blocked.values()))
        if services.backend.memo.first_time(f"lock-reply:{session.event.delivery}"):
            session.say(replies.render_lock_held(session.login, first.url or f"#{first.number}", sorted(blocked),
                                                 secrets=secrets(services)))
        raise LockBusy(f"destinations:{repo.full_name}:{','.join(sorted(blocked))}", f"change {first.number}")
    try:
        merge_sha = forge.merge(repo, change.number, method=session.policy.apply.merge_method,  # type: ignore[arg-type]
                                sha=change.head_sha)
    except ForgeError:
        services.backend.destination_locks.release(repo_key(repo), change.number)
        raise
    set_status(forge, repo, merge_sha, APPLY_CONTEXT, "pending", "merged: promisebot is applying it")
    return f"merged as {merge_sha[:12]}; the merge event applies it"


RUN: dict[str, Callable[[Session, Command], str]] = {
    "plan": run_plan, "apply": run_apply, "status": run_status, "rerun": run_rerun,
    "ok-to-test": run_ok_to_test, "unlock": run_unlock, "help": run_help,
}


# -- helpers -------------------------------------------------------------------------------

def _apply_facts(session: Session, change: Change, base: str) -> ApplyFacts:
    forge, repo = session.forge, session.repo
    plan_facts = _plan_facts(session)
    mergeability = forge.mergeability(repo, change.number)
    mergeable, reason = mergeability.mergeable, mergeability.reason
    if mergeable is False and mergeability.blocked_by and all(
            c.startswith("promisebot/") for c in mergeability.blocked_by):
        mergeable, reason = True, ""  # only promisebot's own statuses: they never block its apply
    destinations = plan_facts.destinations if plan_facts else ()
    owners = session.policy.owners_for(destinations)
    teams = sorted({o for names in owners.values() for o in names if is_team(o)})
    approver_teams = {a: [t for t in teams if forge.member_of(repo, a, t)] for a in change.approvers} if teams else {}
    return ApplyFacts(
        author=change.author, head_sha=change.head_sha, current_base_sha=base, approvers=change.approvers,
        mergeable=mergeable, mergeable_reason=reason,
        plan_head_sha=plan_facts.head if plan_facts else None, plan_base_sha=plan_facts.base if plan_facts else None,
        plan_state=forge.statuses(repo, change.head_sha).get(PLAN_CONTEXT),
        destinations=destinations, approver_teams=approver_teams)


def _plan_facts(session: Session) -> comments.PlanFacts | None:
    """What the bot's own plan comment says it was made of (a comment by anyone else, marker
    pasted or not, is not read)."""
    me = session.forge.whoami()
    parts = comments.find_parts(session.forge.comments(session.repo, session.event.number), author=me)
    return comments.read_facts(parts[1].body) if 1 in parts else None


def _fetch_head(session: Session, change: Change) -> str:
    head_ref = session.forge.head_ref(change.number)
    sync(session.event, session.repo, session.forge, session.services,
         [f"{head_ref}:refs/promisebot/changes/{change.number}/head"])
    return change.head_sha


def _settings(path: Path, rev: str) -> Settings:
    try:
        settings, _ = read_settings(GitTreeSource(path, rev, frozenset({SETTINGS_FILE})))
    except FileError:
        settings = load_settings()
    return settings


def _known_refs(session: Session, rev: str | None) -> set[Ref]:
    """Every object of the platform at `rev` (the default branch when None)."""
    platform = load_platform(GitTreeSource(session.path, rev or f"refs/remotes/origin/{session.repo.default_branch}"))
    return {*platform.requests, *(Ref("Promise", name) for name in platform.promises)}


def _unknown_refs(session: Session, change: Change, refs: list[Ref], command: str) -> str | None:
    head = _fetch_head(session, change)
    known = _known_refs(session, head) | _known_refs(session, None)
    for ref in refs:
        if ref not in known:
            return _unknown(session, command, str(ref), known)
    return None


def _unknown(session: Session, command: str, ref: str, known: set[Ref]) -> str:
    session.say(replies.render_unknown_object(session.login, command, ref, [str(r) for r in known],
                                              secrets=secrets(session.services)))
    return f"unknown object {ref}"
