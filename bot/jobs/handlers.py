"""The job functions: one verified event in, the engine run, the forge told (docs/bot.md).

    push to the default branch    -> reconcile its head (the engine's bookkeeping makes a repeated
                                     or out-of-order push a no-op), under the platform's lock
    PR/MR opened / new commits    -> plan it (bot.jobs.planning: the merge result of its head onto
                                     the base, requests only for an untrusted change); one comment
                                     (edited in place) and the `promisebot/plan` commit status;
                                     the pipelines' results are saved for the apply
    PR/MR merged                  -> reconcile under the lock, reusing the saved results of
                                     unchanged inputs; the comment says what landed where;
                                     `promisebot/apply` on the merge commit; its Destination
                                     locks are released
    PR/MR closed without merge    -> the saved results are dropped, its Destination locks released
    comment on a PR/MR            -> its ChatOps commands (bot.jobs.chatops)

`run_event` is what the queue runs (an rq worker process, or the embedded default's thread).
A ForgeError that is retryable propagates so the queue retries the job; any other promisebot
error is reported on the change (status `error` and the comment) and ends the job.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.errors import PromisebotError
from bot.forges import comment as comments
from bot.forges.base import Event, Forge, ForgeError, Repo, event_from_json
from bot.gitcmd import git_environment
from bot.jobs.chatops import handle_comment
from bot.jobs.landed import landed_for_merge
from bot.jobs.planning import plan
from bot.jobs.repos import auth_environment
from bot.jobs.services import Services
from bot.jobs.steps import (
    APPLY_CONTEXT,
    repo_key,
    report_error,
    secrets,
    set_status,
    sync,
    upsert_comment,
)
from bot.reconcile.engine import ReconcileReport, reconcile
from bot.redact import redact
from bot.report.landed import Landed
from bot.server.logs import delivery_context
from bot.server.metrics import EVENT_TO_REPORT, JOB_SECONDS, LOCK_WAIT
from bot.state.bookkeeping import EVENT_TRAILER
from runners.saved import SavingRunner

log = logging.getLogger("promisebot.jobs")

_SERVICES: Services | None = None


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
            return plan(event, event.repo, forge, services, received_at)
        if event.kind == "change_merged":
            return _apply(event, event.repo, forge, services, received_at)
        if event.kind == "change_closed":
            dropped = services.backend.plans.discard(event.forge, event.repo.full_name, event.number)
            released = services.backend.destination_locks.release(repo_key(event.repo), event.number)
            return f"closed: {dropped} saved result(s) dropped, {len(released)} lock(s) released"
        if event.kind == "comment":
            return handle_comment(event, event.repo, forge, services, received_at)
        return f"ignored: {event.kind}"
    finally:
        JOB_SECONDS.labels(kind=event.kind, stage="total").observe(time.monotonic() - start)


def _reconcile_push(event: Event, repo: Repo, forge: Forge, services: Services) -> str:
    if event.commit_messages and all(EVENT_TRAILER in m for m in event.commit_messages):
        return "ignored: promisebot's own commits"
    report = _locked_reconcile(event, repo, forge, services, runner=services.runner_factory(), trailers={})
    if event.after:
        state, text = _apply_status(report)
        set_status(forge, repo, event.after, APPLY_CONTEXT, state, text)
    return f"reconciled {report.to_rev[:12]}: {len(report.commits)} store commit(s)"


def _locked_reconcile(event: Event, repo: Repo, forge: Forge, services: Services, *, runner: Any,
                      trailers: dict[str, str]) -> ReconcileReport:
    """The reconcile under the platform's lock. A taken lock raises `LockBusy` at once (caught
    neither here nor by the callers): the queue puts the job back to try again later. The
    runner is closed either way."""
    try:
        with services.backend.locks.try_hold(f"reconcile:{repo.forge}:{repo.full_name}") as waited:
            LOCK_WAIT.observe(waited)  # the whole wait, the job's time back in the queue included
            # Fetched under the lock: the head to reconcile is the newest one.
            path = sync(event, repo, forge, services, [])
            started = time.monotonic()
            try:
                with git_environment(auth_environment(forge.clone_credentials(repo))):
                    return reconcile(path, runner=runner, to_rev=f"refs/remotes/origin/{repo.default_branch}",
                                     trailers=trailers)
            finally:
                JOB_SECONDS.labels(kind=event.kind, stage="reconcile").observe(time.monotonic() - started)
    finally:
        close = getattr(runner, "close", None)
        if close:
            close()


def _apply(event: Event, repo: Repo, forge: Forge, services: Services, received_at: float | None) -> str:
    change = forge.fetch_change(repo, event.number)
    merge_sha = event.merge_sha or change.merge_sha
    if merge_sha and services.backend.memo.first_time(f"apply-pending:{event.delivery}"):
        # once per event: a job back from waiting for the lock does not set it again
        set_status(forge, repo, merge_sha, APPLY_CONTEXT, "pending", "promisebot is applying this change")
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
        return report_error(event, repo, forge, services, APPLY_CONTEXT, merge_sha, str(exc))
    except PromisebotError as exc:
        return report_error(event, repo, forge, services, APPLY_CONTEXT, merge_sha, str(exc))
    own = comments.find_parts(forge.comments(repo, event.number))
    plan_text = own[1].body if 1 in own else None
    body = comments.render_applied(plan_text, report, merge_sha=merge_sha, reused=runner.reused,
                                   landed=_landed(services, repo, merge_sha), secrets=secrets(services))
    upsert_comment(forge, repo, event.number, body, own)
    if merge_sha:
        state, text = _apply_status(report)
        set_status(forge, repo, merge_sha, APPLY_CONTEXT, state, text)
    services.backend.plans.discard(event.forge, repo.full_name, event.number)
    services.backend.destination_locks.release(repo_key(repo), event.number)
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
        log.warning("could not read where %s landed: %s", merge_sha[:12], redact(str(exc), secrets(services)))
        return []


def _apply_status(report: ReconcileReport) -> tuple[Any, str]:
    if report.errors:
        return "failure", redact(f"state store write failed: {report.errors[0]}")[:140]
    failed = sum(1 for o in report.outcomes if o.state == "failed")
    if failed or report.invalid:
        return "failure", f"{failed} workflow(s) failed, {len(report.invalid)} invalid"[:140]
    return "success", f"applied: {len(report.commits)} state store commit(s)"[:140]
