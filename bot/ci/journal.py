"""What a job told the forge, recorded as it happens: `JournalForge` is the job's `Forge`, passing
every call through to the real client and writing down each commit status set and each comment
created or edited (`Journal`). The CI command reads the job's outcome from it (bot/ci/outcome.py)
without another request, and without the job functions returning more than their one line.

One more thing it does: GitHub Actions' own `GITHUB_TOKEN` is an installation token, which may
not read `GET /user`; its comments are posted by `github-actions[bot]`, the login `whoami`
answers when GitHub refuses that request (403). ChatOps needs the bot's login to ignore its own
comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.forges.base import (
    Change,
    Comment,
    Credentials,
    Forge,
    ForgeError,
    ForgeName,
    Mergeability,
    MergeMethod,
    Reaction,
    Repo,
    StatusState,
)

GITHUB_ACTIONS_LOGIN = "github-actions[bot]"


@dataclass(frozen=True, slots=True)
class StatusWrite:
    sha: str
    context: str
    state: StatusState
    description: str


@dataclass(frozen=True, slots=True)
class CommentWrite:
    number: int
    comment_id: int
    body: str


@dataclass
class Journal:
    """The job's writes to the forge, in order."""

    statuses: list[StatusWrite] = field(default_factory=list)
    comments: list[CommentWrite] = field(default_factory=list)

    def last_status(self, context: str, sha: str = "") -> StatusWrite | None:
        found = [s for s in self.statuses if s.context == context and (not sha or s.sha == sha)]
        return found[-1] if found else None


class JournalForge:
    """`inner`, with its writes recorded in `journal`."""

    def __init__(self, inner: Forge, journal: Journal) -> None:
        self.inner = inner
        self.journal = journal
        self.name: ForgeName = inner.name
        self._login: str | None = None

    def repository(self, full_name: str) -> Repo:
        return self.inner.repository(full_name)

    def fetch_change(self, repo: Repo, number: int) -> Change:
        return self.inner.fetch_change(repo, number)

    def open_changes(self, repo: Repo) -> list[Change]:
        return self.inner.open_changes(repo)

    def statuses(self, repo: Repo, sha: str) -> dict[str, str]:
        return self.inner.statuses(repo, sha)

    def head_ref(self, number: int) -> str:
        return self.inner.head_ref(number)

    def comments(self, repo: Repo, number: int) -> list[Comment]:
        return self.inner.comments(repo, number)

    def create_comment(self, repo: Repo, number: int, body: str) -> Comment:
        comment = self.inner.create_comment(repo, number, body)
        self.journal.comments.append(CommentWrite(number, comment.id, body))
        return comment

    def edit_comment(self, repo: Repo, number: int, comment_id: int, body: str) -> None:
        self.inner.edit_comment(repo, number, comment_id, body)
        self.journal.comments.append(CommentWrite(number, comment_id, body))

    def set_status(self, repo: Repo, sha: str, context: str, state: StatusState, description: str,
                   target_url: str = "", ref: str = "") -> None:
        self.inner.set_status(repo, sha, context, state, description, target_url=target_url, ref=ref)
        self.journal.statuses.append(StatusWrite(sha, context, state, description))

    def permission(self, repo: Repo, user: str) -> str:
        return self.inner.permission(repo, user)

    def clone_credentials(self, repo: Repo) -> Credentials | None:
        return self.inner.clone_credentials(repo)

    def comment_limit(self) -> int:
        return self.inner.comment_limit()

    def react(self, repo: Repo, number: int, comment_id: int, reaction: Reaction = "eyes") -> None:
        self.inner.react(repo, number, comment_id, reaction)

    def whoami(self) -> str:
        if self._login is None:
            try:
                self._login = self.inner.whoami()
            except ForgeError as exc:
                if self.name != "github" or exc.status != 403:
                    raise
                self._login = GITHUB_ACTIONS_LOGIN
        return self._login

    def member_of(self, repo: Repo, user: str, team: str) -> bool:
        return self.inner.member_of(repo, user, team)

    def merge(self, repo: Repo, number: int, *, method: MergeMethod, sha: str) -> str:
        return self.inner.merge(repo, number, method=method, sha=sha)

    def mergeability(self, repo: Repo, number: int) -> Mergeability:
        return self.inner.mergeability(repo, number)
