"""The outcome of a CI run (pure): what was done, the commit status promisebot set for it, whether
the plan has changes, the comment; and the exit code.

A job (`bot.jobs.handlers.handle`) returns one line; the rest is read from what it told the forge
(bot/ci/journal.py): the last `promisebot/plan` or `promisebot/apply` status it set is the state;
the plan comment carries, on its hidden facts line, the Destinations the plan would change
(`bot.forges.comment.read_facts`, the line `apply` reads too): a plan has changes when it names
any. A reconcile has changes when it made state store commits (its line: "N store commit(s)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.ci.journal import CommentWrite, Journal
from bot.forges import comment as comments
from bot.forges.base import Event

EXIT_OK, EXIT_FAILED, EXIT_CHANGES = 0, 1, 2
_COMMITS = re.compile(r"\b(\d+) store commit")


@dataclass(frozen=True, slots=True)
class Outcome:
    title: str  # what was done, in a few words
    result: str  # the job's line
    state: str = ""  # the commit status promisebot set for it; "" when none
    description: str = ""
    has_changes: bool = False
    plan: bool = False  # a plan was made: --detailed-exitcode applies
    failed: bool = False
    comment_url: str = ""
    comment_body: str = ""
    details: str = ""  # more markdown for the summary: the dry run's plan, where a push landed


def exit_code(outcome: Outcome, detailed: bool) -> int:
    if outcome.failed:
        return EXIT_FAILED
    return EXIT_CHANGES if detailed and outcome.plan and outcome.has_changes else EXIT_OK


def change_ref(event: Event) -> str:
    return f"{'#' if event.forge == 'github' else '!'}{event.number}"


def comment_url(event: Event, change_url: str, comment_id: int) -> str:
    """The web address of comment `comment_id` on the change at `change_url`."""
    if not change_url:
        return ""
    anchor = f"issuecomment-{comment_id}" if event.forge == "github" else f"note_{comment_id}"
    return f"{change_url}#{anchor}"


def plan_comment(journal: Journal, number: int) -> CommentWrite | None:
    """The first part of the bot's comment on change `number` as this job last wrote it."""
    found = [c for c in journal.comments if c.number == number and comments.part_index(c.body) == 1]
    return found[-1] if found else None


def last_comment(journal: Journal, number: int) -> CommentWrite | None:
    found = [c for c in journal.comments if c.number == number]
    return found[-1] if found else None


def plan_changes(body: str, head_sha: str) -> bool:
    """Whether the plan comment `body`, of `head_sha`, would change any Destination."""
    facts = comments.read_facts(body)
    return facts is not None and facts.head == head_sha and bool(facts.destinations)


def store_commits(result: str) -> int:
    match = _COMMITS.search(result)
    return int(match.group(1)) if match else 0


def title_of(event: Event, merge_sha: str = "") -> str:
    """What the job of `event` does, in a few words."""
    assert event.repo is not None
    if event.kind == "push":
        return f"reconcile of {event.repo.default_branch} at `{event.after[:12]}`"
    if event.kind in ("change_opened", "change_updated"):
        return f"plan of {change_ref(event)} at `{event.head_sha[:12]}`"
    if event.kind == "change_merged":
        return f"apply of {change_ref(event)}" + (f" (merge `{merge_sha[:12]}`)" if merge_sha else "")
    if event.kind == "comment":
        return f"comment on {change_ref(event)} by @{event.commenter}"
    if event.kind == "change_closed":
        return f"{change_ref(event)} closed"
    return event.kind


def job_outcome(event: Event, result: str, journal: Journal, *, comment: CommentWrite | None = None,
                change_url: str = "", details: str = "") -> Outcome:
    """The outcome of the job of `event`, which returned `result` and wrote `journal`. `comment`:
    the change's plan comment (part 1) when the job left it unchanged; `change_url`: the
    change's web page when the event does not carry it (`Event.url`)."""
    assert event.repo is not None
    failed = result.startswith("error") or "could not finish" in result
    kind = event.kind
    written: CommentWrite | None = None
    if kind == "push":
        status = journal.last_status(comments.APPLY_CONTEXT, event.after)
    elif kind in ("change_opened", "change_updated"):
        status = journal.last_status(comments.PLAN_CONTEXT, event.head_sha)
        written = plan_comment(journal, event.number) or comment
    elif kind == "change_merged":
        status = journal.last_status(comments.APPLY_CONTEXT)
        written = plan_comment(journal, event.number)
    elif kind == "comment":
        plan_status = journal.last_status(comments.PLAN_CONTEXT)
        status = plan_status or journal.last_status(comments.APPLY_CONTEXT)
        written = ((plan_comment(journal, event.number) or comment) if plan_status else None) \
            or last_comment(journal, event.number)
    else:
        status = None
    title = title_of(event, status.sha if status and kind == "change_merged" else "")
    state = status.state if status else ""
    planned = kind in ("change_opened", "change_updated") or (kind == "comment" and status is not None
                                                             and status.context == comments.PLAN_CONTEXT)
    if planned:
        head = status.sha if status else event.head_sha
        has_changes = written is not None and plan_changes(written.body, head)
    else:
        has_changes = store_commits(result) > 0
    return Outcome(
        title=title, result=result, state=state, description=status.description if status else "",
        has_changes=has_changes, plan=planned, failed=failed or state in ("failure", "error"),
        comment_url=comment_url(event, change_url or event.url, written.comment_id) if written else "",
        comment_body=written.body if written else "", details=details)
