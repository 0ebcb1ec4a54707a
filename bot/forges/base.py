"""What the bot needs from a forge, and the events it reacts to. Pure data and one Protocol:
the forge-specific code implements `Forge` (bot/forges/github.py, bot/forges/gitlab.py); the
job functions only ever see these types.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from bot.errors import PromisebotError

ForgeName = Literal["github", "gitlab"]
EventKind = Literal[
    "push",            # commits pushed to a branch (default branch: reconcile)
    "change_opened",   # a PR/MR opened, reopened, or marked ready: plan
    "change_updated",  # new commits on a PR/MR: plan again
    "change_merged",   # merged: apply
    "change_closed",   # closed without merge: discard its saved plan
    "comment",         # a comment on a PR/MR (ChatOps, a later issue)
    "ignored",         # anything else; `reason` says why
]
StatusState = Literal["pending", "success", "failure", "error"]
MergeMethod = Literal["merge", "squash", "rebase"]
# The reactions both forges have, by GitHub's names (GitLab's emoji names in bot/forges/gitlab.py).
Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
REACTIONS: tuple[str, ...] = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


class ForgeError(PromisebotError):
    """A forge API call failed. `retryable` for 5xx, rate limits and network errors;
    `retry_after` seconds when the forge said (Retry-After / rate-limit reset)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header's wait in seconds (delay-seconds or an HTTP date); None when absent
    or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository on a forge. `full_name` is GitHub's owner/name or GitLab's path_with_namespace;
    `project_id` is GitLab's numeric id (None on GitHub)."""

    forge: ForgeName
    full_name: str
    clone_url: str
    default_branch: str
    project_id: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One verified webhook delivery, parsed (bot/forges/events.py). Fields that do not apply to
    the kind are empty."""

    forge: ForgeName
    kind: EventKind
    delivery: str  # X-GitHub-Delivery / X-Gitlab-Event-UUID: the dedupe key
    repo: Repo | None = None
    reason: str = ""  # why an event is ignored
    # push
    ref: str = ""  # refs/heads/<branch>
    before: str = ""
    after: str = ""
    pusher: str = ""
    commit_messages: tuple[str, ...] = ()
    # pull / merge request
    number: int = 0  # PR number / MR iid
    head_sha: str = ""
    base_ref: str = ""  # the branch it merges into
    base_sha: str = ""
    merge_sha: str = ""  # the merge commit, once merged
    draft: bool = False
    author: str = ""
    url: str = ""  # the PR/MR's web page
    # The head comes from another repository than the base (a fork; GitHub: also a deleted
    # fork). Set when the payload tells it: pull/merge request events, and GitLab comments
    # (its Note Hook carries the MR); a GitHub comment does not, so there it is False and
    # `Forge.fetch_change(...).from_fork` is the answer.
    from_fork: bool = False
    # comment
    comment_id: int = 0
    comment_body: str = ""
    commenter: str = ""
    commenter_is_bot: bool = False  # GitHub: comment.user.type "Bot"; GitLab: user.bot when sent
    # GitHub App
    installation_id: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """A PR/MR as the forge reports it now (`Forge.fetch_change`).

    `approvers`: who approves it now. GitHub: each reviewer's latest review that is APPROVED,
    CHANGES_REQUESTED or DISMISSED decides, whatever commit it was left on (a COMMENTED review
    leaves an earlier approval standing; GitHub's "dismiss stale approvals" setting is what turns
    approvals of older commits into DISMISSED). GitLab: `approved_by` of the MR's approvals.

    `head_repo`: the full name of the repository the head comes from (GitHub owner/name, GitLab
    path_with_namespace); "" when it is unknown: a deleted fork (GitHub), or a fork project the
    token cannot see (GitLab). `from_fork`: that repository is not the base repository (GitHub:
    also when the head repository was deleted; GitLab: source_project_id != target_project_id).
    """

    number: int
    url: str
    state: Literal["open", "closed", "merged"]
    head_sha: str
    base_ref: str
    base_sha: str
    merge_sha: str
    author: str
    approvers: tuple[str, ...] = ()
    draft: bool = False
    title: str = ""
    head_repo: str = ""
    from_fork: bool = False


@dataclass(frozen=True, slots=True)
class Mergeability:
    """Whether a PR/MR can be merged now (`Forge.mergeability`). `mergeable` is None while the
    forge is still computing it (ask again shortly). `reason` says why in words. `blocked_by`
    names the commit statuses and checks (GitHub contexts and check-run names, GitLab status and
    job names) of the head that are not successful, when they are what blocks the merge (GitHub
    "blocked", GitLab ci_must_pass / ci_still_running), so a caller can leave its own
    (`promisebot/*`) out: an empty list there means something else blocks (required reviews,
    or a required status that was never set)."""

    mergeable: bool | None
    reason: str
    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    body: str
    author: str = ""


@dataclass(slots=True)
class Credentials:
    """HTTP credentials to clone/fetch a repository of the forge (never logged)."""

    username: str
    password: str = field(repr=False)


class Forge(Protocol):
    """One forge (GitHub.com / GitHub Enterprise, GitLab.com / self-managed). Every method does
    network I/O and raises ForgeError."""

    name: ForgeName

    def repository(self, full_name: str) -> Repo:
        """The repository as the forge reports it now (GitHub owner/name, GitLab
        path_with_namespace): its clone URL, default branch and (GitLab) project id."""
        ...

    def fetch_change(self, repo: Repo, number: int) -> Change: ...

    def open_changes(self, repo: Repo) -> list[Change]:
        """Every open PR/MR of the repository, all pages, drafts included (`Change.draft`). From
        the forge's list endpoint, so fields it does not list are empty: `approvers` always,
        and `base_sha` on GitLab (use `fetch_change` for them)."""
        ...

    def statuses(self, repo: Repo, sha: str) -> dict[str, str]:
        """The latest state of each commit status on `sha`, by context (GitLab: status name):
        "pending", "success", "failure" or "error" (GitLab's own states mapped onto these the
        way `set_status` maps them, its "canceled" and "skipped" kept as they are)."""
        ...

    def head_ref(self, number: int) -> str:
        """The ref a PR/MR's head is fetched from in the base repository (forks included):
        refs/pull/N/head (GitHub) or refs/merge-requests/N/head (GitLab)."""
        ...

    def comments(self, repo: Repo, number: int) -> list[Comment]: ...

    def create_comment(self, repo: Repo, number: int, body: str) -> Comment: ...

    def edit_comment(self, repo: Repo, number: int, comment_id: int, body: str) -> None: ...

    def set_status(self, repo: Repo, sha: str, context: str, state: StatusState, description: str,
                   target_url: str = "", ref: str = "") -> None:
        """Set commit status `context` on `sha`. `ref` names a ref the commit is reachable from
        when it may be on no branch of the repository: a PR/MR head from a fork, reachable only
        from `head_ref(number)`. GitHub needs no ref and ignores it; GitLab refuses a status on
        such a commit without one (404 "References for commit") and is given it then."""
        ...

    def permission(self, repo: Repo, user: str) -> str:
        """The user's role on the repository: "admin", "maintain", "write", "triage", "read" or
        "none" (GitLab access levels mapped onto these)."""
        ...

    def clone_credentials(self, repo: Repo) -> Credentials | None: ...

    def comment_limit(self) -> int:
        """The longest comment body the forge accepts, in characters."""
        ...

    def react(self, repo: Repo, number: int, comment_id: int, reaction: Reaction = "eyes") -> None:
        """React to comment `comment_id` of PR/MR `number` (GitHub: a reaction on the issue
        comment; GitLab: an award emoji on the note, "+1" as thumbsup, "hooray" as tada, ...).
        Idempotent: reacting again with the same reaction is not an error. An unknown reaction
        raises ValueError before anything is sent."""
        ...

    def whoami(self) -> str:
        """The login promisebot posts as (GitHub: the token's user, or `<app slug>[bot]` for a
        GitHub App; GitLab: the token's username). Asked once per forge object, then cached."""
        ...

    def member_of(self, repo: Repo, user: str, team: str) -> bool:
        """Whether `user` is an active member of `team`: a GitHub team `org/team-slug`, or a
        GitLab group by its full path `group/subgroup` (direct or inherited membership). False for
        an unknown user or a non-member; a team or group that does not exist (or that the
        credentials cannot see) raises ForgeError, so a misspelt team is not silently nobody."""
        ...

    def merge(self, repo: Repo, number: int, *, method: MergeMethod, sha: str) -> str:
        """Merge PR/MR `number`, only if its head is still `sha`, and return the commit that
        landed on the base branch. A PR/MR that cannot be merged, or whose head moved, raises a
        non-retryable ForgeError carrying the forge's reason. GitLab: `method` "squash" squashes;
        "merge" and "rebase" do not, and whether a merge commit is made or the head is
        fast-forwarded is the project's merge method setting, not the caller's."""
        ...

    def mergeability(self, repo: Repo, number: int) -> Mergeability:
        """Whether PR/MR `number` can be merged now, why not, and which statuses block it."""
        ...


def event_to_json(event: Event) -> dict[str, object]:
    """An event as plain JSON data (what a queued job carries)."""
    out: dict[str, object] = {f: getattr(event, f) for f in Event.__dataclass_fields__}
    out["repo"] = None if event.repo is None else {f: getattr(event.repo, f) for f in Repo.__dataclass_fields__}
    out["commit_messages"] = list(event.commit_messages)
    return out


def event_from_json(data: dict[str, object]) -> Event:
    fields = dict(data)
    repo = fields.pop("repo", None)
    messages = fields.pop("commit_messages", ())
    return Event(**fields, repo=Repo(**repo) if isinstance(repo, dict) else None,  # type: ignore[arg-type]
                 commit_messages=tuple(messages) if isinstance(messages, list | tuple) else ())
