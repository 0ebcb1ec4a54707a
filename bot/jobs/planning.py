"""The plan of a pull/merge request: its head merged onto the current base, planned by the
engine (a dry run) with the pipelines' results saved for the apply; one comment edited in place
and the `promisebot/plan` commit status (docs/bot.md, docs/chatops.md).

Trust (docs/chatops.md, "Trust"): a change whose author lacks write access, or whose head is in
a fork, is planned on the default branch's platform with only its Resource request files taken
(`bot.jobs.trust.restrict_to_requests`): Promises, Destinations, State Stores, pipeline images
and `.promisebot.yaml` come from the default branch, and the comment lists what was left out.
Its pipelines run only once a user allowed to run `ok-to-test` approved its current head (the
`promisebot/ok-to-test` status on that commit, set by that command): a new push needs a new
approval. A change from a writer is planned as its full merge result.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from bot.chatops.policy import role_rank
from bot.errors import PromisebotError
from bot.forges import comment as comments
from bot.forges.base import Change, Event, Forge, ForgeError, Repo
from bot.gitcmd import git_environment, rev_sha
from bot.jobs.policyfile import read_policy
from bot.jobs.repos import auth_environment
from bot.jobs.services import Services
from bot.jobs.steps import (
    OK_TO_TEST_CONTEXT,
    PLAN_CONTEXT,
    change_key,
    repo_key,
    report_error,
    secrets,
    set_status,
    sync,
    upsert_comment,
)
from bot.jobs.trust import Restricted, restrict_to_requests
from bot.model.objects import Ref
from bot.reconcile.engine import reconcile
from bot.report.markdown import code_span
from bot.server.metrics import EVENT_TO_REPORT, JOB_SECONDS
from runners.saved import SavingRunner

TRUSTED_ROLE = "write"


@dataclass(frozen=True, slots=True)
class Trust:
    """Whether a change is planned as its full merge result; `why` it is not."""

    trusted: bool
    why: str = ""


def trust_of(forge: Forge, repo: Repo, change: Change) -> Trust:
    if change.from_fork:
        return Trust(False, f"its head is in a fork ({change.head_repo or 'a repository that is gone'})")
    role = forge.permission(repo, change.author) if change.author else "none"
    if role_rank(role) < role_rank(TRUSTED_ROLE):
        return Trust(False, f"its author @{change.author or 'unknown'} has {role} access, not {TRUSTED_ROLE}")
    return Trust(True)


def plan(event: Event, repo: Repo, forge: Forge, services: Services, received_at: float | None,
         rerun: Collection[Ref] = ()) -> str:
    """Plan the change `event.number` at `event.head_sha` (a newer head supersedes it).
    `rerun`: objects whose workflows run again whatever their saved results say."""
    key = change_key(event)
    if event.draft and not plans_drafts(event, repo, forge, services):
        return "skipped: draft (plan.drafts in .promisebot.yaml, or PROMISEBOT_PLAN_DRAFTS=true, plans drafts)"
    if services.backend.memo.latest(key) not in (None, event.head_sha):
        return "superseded by a newer head"
    head_ref = forge.head_ref(event.number)  # a fork's head is on no branch: GitLab needs the ref
    set_status(forge, repo, event.head_sha, PLAN_CONTEXT, "pending", "promisebot is planning this change", head_ref)
    runner = SavingRunner(services.runner_factory(), services.backend.plans, record=True, reuse=not rerun)
    try:
        change = forge.fetch_change(repo, event.number)
        trust = trust_of(forge, repo, change)
        local_head = f"refs/promisebot/changes/{event.number}/head"
        path = sync(event, repo, forge, services, [f"{head_ref}:{local_head}"])
        base = rev_sha(path, f"refs/remotes/origin/{repo.default_branch}")
        if base is None:
            raise ForgeError(f"the default branch {repo.default_branch} of {repo.full_name} was not fetched")
        merged = services.repos.merge_result(repo, base, event.head_sha,
                                             f"promisebot: plan of change {event.number} ({event.head_sha[:12]})")
        notes: list[str] = []
        if not trust.trusted:
            with services.repos.locked(repo):
                restricted = restrict_to_requests(path, base, merged, message=(
                    f"promisebot: plan of change {event.number} ({event.head_sha[:12]}), requests only"))
            merged = restricted.commit
            notes += untrusted_notes(trust, restricted)
            if forge.statuses(repo, event.head_sha).get(OK_TO_TEST_CONTEXT) != "success":
                body = comments.render_waiting(event.head_sha, trust.why, notes, secrets=secrets(services))
                upsert_comment(forge, repo, event.number, body)
                set_status(forge, repo, event.head_sha, PLAN_CONTEXT, "pending",
                           "waiting for /promisebot ok-to-test from a user with write access", head_ref)
                return f"waiting for ok-to-test on {event.head_sha[:12]}"
        started = time.monotonic()
        with git_environment(auth_environment(forge.clone_credentials(repo))):
            report = reconcile(path, runner=runner, to_rev=merged, dry_run=True, rerun=rerun)
        JOB_SECONDS.labels(kind=event.kind, stage="plan").observe(time.monotonic() - started)
    except ForgeError as exc:
        if exc.retryable:
            raise
        return report_error(event, repo, forge, services, PLAN_CONTEXT, event.head_sha, str(exc))
    except PromisebotError as exc:
        return report_error(event, repo, forge, services, PLAN_CONTEXT, event.head_sha, str(exc))
    finally:
        runner.close()
    services.backend.plans.remember(event.forge, repo.full_name, event.number, runner.keys)
    if (newest := services.backend.memo.latest(key)) not in (None, event.head_sha):
        # this head's pending status must not stay the last word on it
        set_status(forge, repo, event.head_sha, PLAN_CONTEXT, "error",
                   f"superseded by {str(newest)[:12]}: see the plan of the newest commit", head_ref)
        return "superseded by a newer head (plan not reported)"
    destinations = comments.touched_destinations(report)
    held = services.backend.destination_locks.holders(repo_key(repo), destinations)
    notes += lock_notes({d: h.url or f"#{h.number}" for d, h in held.items() if h.number != event.number})
    body = comments.render_plan(report, head_sha=event.head_sha, base_ref=repo.default_branch, base_sha=base,
                                reused=runner.reused, notes=notes, secrets=secrets(services))
    upsert_comment(forge, repo, event.number, body)
    state, text = comments.status_for(report, secrets=secrets(services))
    set_status(forge, repo, event.head_sha, PLAN_CONTEXT, state, text, head_ref)
    if received_at is not None:
        EVENT_TO_REPORT.observe(max(0.0, time.time() - received_at))
    return f"planned {event.head_sha[:12]}: {state}"


def plans_drafts(event: Event, repo: Repo, forge: Forge, services: Services) -> bool:
    """Whether drafts are planned: `plan.drafts` of the policy on the default branch when it
    says, else PROMISEBOT_PLAN_DRAFTS."""
    policy, _ = read_policy(sync(event, repo, forge, services, []), repo)
    return policy.plan_drafts if policy.plan_drafts is not None else services.config.plan_drafts


def untrusted_notes(trust: Trust, restricted: Restricted) -> list[str]:
    lines = [f"> [!NOTE]\n> Only this change's Resource requests are planned: {trust.why}. Promises, "
             "Destinations, State Stores, pipeline images and `.promisebot.yaml` come from the default branch."]
    if restricted.dropped:
        lines.append(f"<details><summary>Left out of this plan ({len(restricted.dropped)})</summary>\n")
        lines += [f"- {code_span(d.path)}: {comments.escape(d.reason)}" for d in restricted.dropped]
        lines.append("\n</details>")
    return lines


def lock_notes(held: dict[str, str]) -> list[str]:
    """A note per Destination another change's apply holds (its apply goes first)."""
    return [f"- Destination {code_span(dest)} is locked by {comments.escape(owner)} (its apply is in "
            "progress): an apply of this change waits for it." for dest, owner in sorted(held.items())]
