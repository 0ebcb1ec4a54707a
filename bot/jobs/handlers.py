"""The job functions: one verified event in, the engine run, the forge told (docs/bot.md).

    push to the default branch    -> reconcile its head (the engine's bookkeeping makes a repeated
                                     or out-of-order push a no-op), under the platform's lock
    PR/MR opened / new commits    -> plan the merge result of its head onto the base: one comment
                                     (edited in place) and the `promisebot/plan` commit status;
                                     the pipelines' results are saved for the apply
    PR/MR merged                  -> reconcile under the lock, reusing the saved results of
                                     unchanged inputs; the comment says what landed where;
                                     `promisebot/apply` on the merge commit
    PR/MR closed without merge    -> the saved results are dropped

`run_event` is what the queue runs (an rq worker process, or the embedded default's thread).
A ForgeError that is retryable propagates so the queue retries the job; any other promisebot
error is reported on the change (status `error` and the comment) and ends the job.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from bot.errors import PromisebotError
from bot.forges import comment as comments
from bot.forges.base import Comment, Event, Forge, ForgeError, Repo, event_from_json
from bot.gitcmd import git_environment, rev_sha
from bot.jobs.landed import landed_for_merge
from bot.jobs.repos import RepoError, auth_environment
from bot.jobs.services import Services
from bot.reconcile.engine import ReconcileReport, reconcile
from bot.redact import redact
from bot.report.landed import Landed
from bot.server.logs import delivery_context
from bot.server.metrics import EVENT_TO_REPORT, JOB_SECONDS, LOCK_WAIT
from bot.state.bookkeeping import EVENT_TRAILER
from runners.saved import SavingRunner

log = logging.getLogger("promisebot.jobs")

PLAN_CONTEXT, APPLY_CONTEXT = "promisebot/plan", "promisebot/apply"
_SERVICES: Services | None = None


def change_key(event: Event) -> str:
    assert event.repo is not None
    return f"{event.forge}:{event.repo.full_name}:{event.number}"


def process_services() -> Services:
    """This process's services, built from the environment once (an rq worker's)."""
    global _SERVICES
    if _SERVICES is None:
        from bot.server.config import load_config

        _SERVICES = Services.from_config(load_config())
    return _SERVICES


def run_event(data: dict[str, Any], received_at: float | None = None, services: Services | None = None) -> str:
    """The queued job: handle one event; returns what was done (shown by rq and in the logs)."""
    services = services or process_services()
    event = event_from_json(data)
    with delivery_context(event.delivery):  # every log line of the job carries it
        return handle(event, services, received_at)


def handle(event: Event, services: Services, received_at: float | None = None) -> str:
    if event.repo is None:
        return f"ignored: {event.reason or 'no repository'}"
    forge = services.forge(event)
    start = time.monotonic()
    try:
        if event.kind == "push":
            return _reconcile_push(event, event.repo, forge, services)
        if event.kind in ("change_opened", "change_updated"):
            return _plan(event, event.repo, forge, services, received_at)
        if event.kind == "change_merged":
            return _apply(event, event.repo, forge, services, received_at)
        if event.kind == "change_closed":
            dropped = services.backend.plans.discard(event.forge, event.repo.full_name, event.number)
            return f"closed: {dropped} saved result(s) dropped"
        return f"ignored: {event.kind}"
    finally:
        JOB_SECONDS.labels(kind=event.kind, stage="total").observe(time.monotonic() - start)


def _sync(event: Event, repo: Repo, forge: Forge, services: Services, refs: list[str]) -> Any:
    started = time.monotonic()
    try:
        path = services.repos.sync(repo, forge.clone_credentials(repo), refs)
    except RepoError as exc:  # a Git network error: transient, the queue retries the job
        raise ForgeError(str(exc), retryable=True) from None
    JOB_SECONDS.labels(kind=event.kind, stage="fetch").observe(time.monotonic() - started)
    return path


def _secrets(services: Services) -> list[str]:
    return services.config.secrets()


def _reconcile_push(event: Event, repo: Repo, forge: Forge, services: Services) -> str:
    if event.commit_messages and all(EVENT_TRAILER in m for m in event.commit_messages):
        return "ignored: promisebot's own commits"
    report = _locked_reconcile(event, repo, forge, services, runner=services.runner_factory(), trailers={})
    if event.after:
        state, text = _apply_status(report)
        _status(forge, repo, event.after, APPLY_CONTEXT, state, text)
    return f"reconciled {report.to_rev[:12]}: {len(report.commits)} store commit(s)"


def _locked_reconcile(event: Event, repo: Repo, forge: Forge, services: Services, *, runner: Any,
                      trailers: dict[str, str]) -> ReconcileReport:
    with services.backend.locks.hold(f"reconcile:{repo.forge}:{repo.full_name}") as waited:
        LOCK_WAIT.observe(waited)
        # Fetched under the lock: the head to reconcile is the newest one.
        path = _sync(event, repo, forge, services, [])
        started = time.monotonic()
        try:
            with git_environment(auth_environment(forge.clone_credentials(repo))):
                return reconcile(path, runner=runner, to_rev=f"refs/remotes/origin/{repo.default_branch}",
                                 trailers=trailers)
        finally:
            JOB_SECONDS.labels(kind=event.kind, stage="reconcile").observe(time.monotonic() - started)
            close = getattr(runner, "close", None)
            if close:
                close()


def _plan(event: Event, repo: Repo, forge: Forge, services: Services, received_at: float | None) -> str:
    key = change_key(event)
    if event.draft and not services.config.plan_drafts:
        return "skipped: draft (set PROMISEBOT_PLAN_DRAFTS=true to plan drafts)"
    if services.backend.memo.latest(key) not in (None, event.head_sha):
        return "superseded by a newer head"
    head_ref = forge.head_ref(event.number)  # a fork's head is on no branch: GitLab needs the ref
    _status(forge, repo, event.head_sha, PLAN_CONTEXT, "pending", "promisebot is planning this change", head_ref)
    runner = SavingRunner(services.runner_factory(), services.backend.plans, record=True)
    try:
        local_head = f"refs/promisebot/changes/{event.number}/head"
        path = _sync(event, repo, forge, services, [f"{head_ref}:{local_head}"])
        base = rev_sha(path, f"refs/remotes/origin/{repo.default_branch}")
        if base is None:
            raise ForgeError(f"the default branch {repo.default_branch} of {repo.full_name} was not fetched")
        merged = services.repos.merge_result(repo, base, event.head_sha,
                                             f"promisebot: plan of change {event.number} ({event.head_sha[:12]})")
        started = time.monotonic()
        with git_environment(auth_environment(forge.clone_credentials(repo))):
            report = reconcile(path, runner=runner, to_rev=merged, dry_run=True)
        JOB_SECONDS.labels(kind=event.kind, stage="plan").observe(time.monotonic() - started)
    except ForgeError as exc:
        if exc.retryable:
            raise
        return _report_error(event, repo, forge, services, PLAN_CONTEXT, event.head_sha, str(exc))
    except PromisebotError as exc:
        return _report_error(event, repo, forge, services, PLAN_CONTEXT, event.head_sha, str(exc))
    finally:
        runner.close()
    services.backend.plans.remember(event.forge, repo.full_name, event.number, runner.keys)
    if (newest := services.backend.memo.latest(key)) not in (None, event.head_sha):
        # this head's pending status must not stay the last word on it
        _status(forge, repo, event.head_sha, PLAN_CONTEXT, "error",
                f"superseded by {str(newest)[:12]}: see the plan of the newest commit", head_ref)
        return "superseded by a newer head (plan not reported)"
    body = comments.render_plan(report, head_sha=event.head_sha, base_ref=repo.default_branch,
                                secrets=_secrets(services))
    _upsert_comment(forge, repo, event.number, body)
    state, text = comments.status_for(report, secrets=_secrets(services))
    _status(forge, repo, event.head_sha, PLAN_CONTEXT, state, text, head_ref)
    if received_at is not None:
        EVENT_TO_REPORT.observe(max(0.0, time.time() - received_at))
    return f"planned {event.head_sha[:12]}: {state}"


def _apply(event: Event, repo: Repo, forge: Forge, services: Services, received_at: float | None) -> str:
    change = forge.fetch_change(repo, event.number)
    merge_sha = event.merge_sha or change.merge_sha
    if merge_sha:
        _status(forge, repo, merge_sha, APPLY_CONTEXT, "pending", "promisebot is applying this change")
    trailers = {"Promisebot-Change": change.url or event.url, "Promisebot-Author": change.author or event.author}
    if change.approvers:
        trailers["Promisebot-Approved-By"] = ", ".join(change.approvers)
    runner = SavingRunner(services.runner_factory(), services.backend.plans, reuse=True)
    try:
        report = _locked_reconcile(event, repo, forge, services, runner=runner,
                                   trailers={k: v for k, v in trailers.items() if v})
    except ForgeError as exc:
        if exc.retryable:
            raise
        return _report_error(event, repo, forge, services, APPLY_CONTEXT, merge_sha, str(exc))
    except PromisebotError as exc:
        return _report_error(event, repo, forge, services, APPLY_CONTEXT, merge_sha, str(exc))
    own = comments.find_parts(forge.comments(repo, event.number))
    plan_text = own[1].body if 1 in own else None
    body = comments.render_applied(plan_text, report, merge_sha=merge_sha, reused=runner.reused,
                                   landed=_landed(services, repo, merge_sha), secrets=_secrets(services))
    _upsert_comment(forge, repo, event.number, body, own)
    if merge_sha:
        state, text = _apply_status(report)
        _status(forge, repo, merge_sha, APPLY_CONTEXT, state, text)
    services.backend.plans.discard(event.forge, repo.full_name, event.number)
    if received_at is not None:
        EVENT_TO_REPORT.observe(max(0.0, time.time() - received_at))
    return f"applied {report.to_rev[:12]}: {len(report.commits)} store commit(s), {runner.reused} result(s) reused"


def _landed(services: Services, repo: Repo, merge_sha: str) -> list[Landed]:
    """Where the merge's objects landed, from bookkeeping (empty when it cannot be read: the
    comment then shows this job's own writes only)."""
    if not merge_sha:
        return []
    try:
        return landed_for_merge(services.repos.path(repo), merge_sha)
    except PromisebotError as exc:
        log.warning("could not read where %s landed: %s", merge_sha[:12], redact(str(exc), _secrets(services)))
        return []


def _apply_status(report: ReconcileReport) -> tuple[Any, str]:
    if report.errors:
        return "failure", redact(f"state store write failed: {report.errors[0]}")[:140]
    failed = sum(1 for o in report.outcomes if o.state == "failed")
    if failed or report.invalid:
        return "failure", f"{failed} workflow(s) failed, {len(report.invalid)} invalid"[:140]
    return "success", f"applied: {len(report.commits)} state store commit(s)"[:140]


def _upsert_comment(forge: Forge, repo: Repo, number: int, body: str,
                    existing: dict[int, Comment] | None = None) -> None:
    """One comment (in parts when over the forge's limit), found again by its marker and
    edited only where its text changed; parts no longer needed are emptied. `existing`: the
    bot's parts (`comments.find_parts`) when the caller listed them already."""
    parts = comments.split(body, forge.comment_limit())
    if existing is None:
        existing = comments.find_parts(forge.comments(repo, number))
    for index, text in enumerate(parts, start=1):
        old = existing.get(index)
        if old is None:
            forge.create_comment(repo, number, text)
        elif old.body != text:
            forge.edit_comment(repo, number, old.id, text)
    for index, old in existing.items():
        if index > len(parts):
            unused = comments.render_unused_part(index)
            if old.body != unused:
                forge.edit_comment(repo, number, old.id, unused)


def _status(forge: Forge, repo: Repo, sha: str, context: str, state: Any, description: str, ref: str = "") -> None:
    forge.set_status(repo, sha, context, state, description[:140], ref=ref)


def _report_error(event: Event, repo: Repo, forge: Forge, services: Services, context: str, sha: str,
                  message: str) -> str:
    text = redact(message, _secrets(services))
    log.error(json.dumps({"event": event.kind, "error": text}))
    if sha:
        ref = forge.head_ref(event.number) if context == PLAN_CONTEXT else ""
        _status(forge, repo, sha, context, "error", f"promisebot could not finish: {text}", ref)
    _upsert_comment(forge, repo, event.number, comments.render_error(text, secrets=_secrets(services)))
    return f"error: {text}"
