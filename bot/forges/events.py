"""Webhook deliveries from GitHub and GitLab: first authenticity, then parsing into `base.Event`.

Pure functions: no I/O, no flask. The server calls them in this order:

1. `verify_github(secrets, body, headers)` / `verify_gitlab(secrets, headers)` on the raw request,
   before the body is parsed as JSON. Each returns None when the delivery is authentic, else the
   reason it is refused. A reason never contains the received signature or token.
2. `parse_github(event_name, delivery, payload)` / `parse_gitlab(...)` on the decoded JSON body,
   with the event name and delivery id taken from the request headers (`GITHUB_EVENT_HEADER`,
   `GITHUB_DELIVERY_HEADER`, `GITLAB_EVENT_HEADER`, `GITLAB_DELIVERY_HEADER`). The result's `kind`
   says what to do; anything promisebot does not act on comes back as kind "ignored" with a
   `reason`. A payload that lacks a field the kind needs raises `EventError` naming the field.

What is acted on (issue 10, "Events"):

| forge  | event                 | condition                                     | kind           |
|--------|-----------------------|-----------------------------------------------|----------------|
| GitHub | push                  | a branch update of the default branch         | push           |
| GitHub | pull_request          | opened, reopened, ready_for_review            | change_opened  |
| GitHub | pull_request          | synchronize                                   | change_updated |
| GitHub | pull_request          | closed with merged true / false               | change_merged / change_closed |
| GitHub | issue_comment         | created, on a pull request                    | comment        |
| GitLab | Push Hook             | a branch update of the default branch         | push           |
| GitLab | Merge Request Hook    | open, reopen                                  | change_opened  |
| GitLab | Merge Request Hook    | update carrying `oldrev` (new commits)        | change_updated |
| GitLab | Merge Request Hook    | merge / close                                 | change_merged / change_closed |
| GitLab | Note Hook             | a new note on a merge request                 | comment        |

Everything else is "ignored": tags, branch deletions, pushes to other branches, pull/merge
requests into a branch other than the default branch (their merge is a push the bot ignores, so
a plan or an apply for them would be wrong), other actions (labels, edits, approvals, an MR
`update` without `oldrev`, which is a title or description edit), comments on issues, commits
or snippets, edited comments, GitLab system notes, `ping`, and unknown events.

Drafts are flagged (`Event.draft`), not ignored: whether to skip them is configuration the job
functions read. So are forks (`Event.from_fork`: GitHub pull_request.head.repo is not
pull_request.base.repo, or null for a deleted fork; GitLab source_project_id is not
target_project_id, on merge requests and on notes, whose `merge_request` carries both; a GitHub
comment does not tell) and bot commenters (`Event.commenter_is_bot`: GitHub comment.user.type
"Bot"; GitLab a `user.bot` true, which GitLab's published payloads do not carry). A GitHub comment
carries no head commit: its `head_sha` is empty. The bot's own commits are recognised by the caller from `pusher` and
`commit_messages`, which only it knows how to match.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard, TypeVar

from bot.errors import PromisebotError
from bot.forges.base import Event, EventKind, ForgeName, Repo

GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITHUB_SHA1_SIGNATURE_HEADER = "X-Hub-Signature"
GITHUB_EVENT_HEADER = "X-GitHub-Event"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"
GITLAB_TOKEN_HEADER = "X-Gitlab-Token"
GITLAB_EVENT_HEADER = "X-Gitlab-Event"
GITLAB_DELIVERY_HEADER = "X-Gitlab-Event-UUID"

_SHA256_PREFIX = "sha256="
_HEX = frozenset("0123456789abcdef")


class EventError(PromisebotError, ValueError):
    """A webhook payload lacks a field promisebot needs, or has it with the wrong type. The
    message names the forge, the event and the field (never its value)."""


# --- authenticity -------------------------------------------------------------------------------


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header `name`, looked up case-insensitively; None when absent. Raises
    `EventError` when the mapping holds the header more than once under different spellings
    (a plain dict can), since which one the forge meant is then unknowable."""
    wanted = name.lower()
    found = [value for key, value in headers.items() if key.lower() == wanted]
    if len(found) > 1:
        raise EventError(f"header {name} appears {len(found)} times")
    return found[0] if found else None


def _usable(secrets: Sequence[str]) -> list[bytes]:
    """The configured secrets, encoded; empty ones dropped (an empty secret would let anyone
    sign)."""
    return [secret.encode("utf-8") for secret in secrets if secret]


def verify_github(secrets: Sequence[str], body: bytes, headers: Mapping[str, str]) -> str | None:
    """None when `X-Hub-Signature-256` is `sha256=` + the hex HMAC-SHA256 of the raw `body` under
    any one of `secrets` (several during a rotation), else why the delivery is refused. The
    SHA-1 `X-Hub-Signature` alone is refused: promisebot accepts SHA-256 only."""
    keys = _usable(secrets)
    if not keys:
        return "no GitHub webhook secret is configured, so no delivery can be verified"
    try:
        received = header(headers, GITHUB_SIGNATURE_HEADER)
        sha1_only = received is None and header(headers, GITHUB_SHA1_SIGNATURE_HEADER) is not None
    except EventError as error:
        return str(error)
    if received is None:
        if sha1_only:
            return (f"only the SHA-1 {GITHUB_SHA1_SIGNATURE_HEADER} header was sent; promisebot "
                    f"requires {GITHUB_SIGNATURE_HEADER} (HMAC-SHA256)")
        return (f"missing {GITHUB_SIGNATURE_HEADER} header: set a secret on the GitHub webhook "
                "(or the delivery did not come from GitHub)")
    digest = received.strip()
    if not digest.startswith(_SHA256_PREFIX):
        return f"malformed {GITHUB_SIGNATURE_HEADER} header: expected sha256=<64 hex digits>"
    digest = digest[len(_SHA256_PREFIX):].lower()
    if len(digest) != 64 or not set(digest) <= _HEX:
        return f"malformed {GITHUB_SIGNATURE_HEADER} header: expected sha256=<64 hex digits>"
    matched = False
    for key in keys:  # every secret is tried, whichever matches: no early exit
        expected = hmac.new(key, body, hashlib.sha256).hexdigest()
        matched |= hmac.compare_digest(expected.encode("ascii"), digest.encode("ascii"))
    if not matched:
        return (f"{GITHUB_SIGNATURE_HEADER} does not match the body under any configured webhook "
                "secret")
    return None


def verify_gitlab(secrets: Sequence[str], headers: Mapping[str, str]) -> str | None:
    """None when `X-Gitlab-Token` equals one of `secrets` (compared in constant time), else why
    the delivery is refused."""
    keys = _usable(secrets)
    if not keys:
        return "no GitLab webhook secret is configured, so no delivery can be verified"
    try:
        received = header(headers, GITLAB_TOKEN_HEADER)
    except EventError as error:
        return str(error)
    if not received:
        return (f"missing {GITLAB_TOKEN_HEADER} header: set a secret token on the GitLab webhook "
                "(or the delivery did not come from GitLab)")
    token = received.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(key, token)
    if not matched:
        return f"{GITLAB_TOKEN_HEADER} does not match any configured webhook secret"
    return None


# --- payload access -----------------------------------------------------------------------------

_MISSING = object()


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)


T = TypeVar("T")
D = TypeVar("D")


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: object) -> TypeGuard[bool]:
    return isinstance(value, bool)


class _Payload:
    """Typed access to a decoded JSON payload by dotted path; errors name the path."""

    def __init__(self, forge: ForgeName, event: str, payload: object) -> None:
        self.context = f"{'GitHub' if forge == 'github' else 'GitLab'} {event!r} payload"
        if not isinstance(payload, dict):
            raise EventError(f"{self.context} is a JSON {_type_name(payload)}, not an object")
        self.root: dict[str, Any] = payload

    def _lookup(self, path: str) -> object:
        """The value at `path`; _MISSING when it or a parent is absent or null."""
        node: object = self.root
        walked: list[str] = []
        for part in path.split("."):
            if node is None:
                return _MISSING
            if not isinstance(node, dict):
                raise EventError(f"{self.context}: field {path} cannot be read: "
                                 f"{'.'.join(walked)} is {_type_name(node)}, not an object")
            walked.append(part)
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return _MISSING
        return node

    def has(self, path: str) -> bool:
        try:
            return self._lookup(path) not in (_MISSING, None)
        except EventError:
            return False

    def _wrong(self, path: str, value: object, expected: str) -> EventError:
        return EventError(f"{self.context}: field {path} must be {expected}, "
                          f"got {_type_name(value)}")

    def _missing(self, path: str) -> EventError:
        return EventError(f"{self.context}: missing field {path}")

    def _required(self, path: str, valid: Callable[[object], TypeGuard[T]], expected: str) -> T:
        """The value at `path`, which must be there and `valid` (null is the wrong type)."""
        value = self._lookup(path)
        if value is _MISSING:
            raise self._missing(path)
        if valid(value):
            return value
        raise self._wrong(path, value, expected)

    def _optional(self, path: str, valid: Callable[[object], TypeGuard[T]], expected: str, default: D) -> T | D:
        """The value at `path`, which must be `valid`; `default` when absent or null."""
        value = self._lookup(path)
        if value is _MISSING or value is None:
            return default
        if valid(value):
            return value
        raise self._wrong(path, value, expected)

    def text(self, path: str) -> str:
        """The non-empty string at `path`."""
        return self._required(path, _is_text, "a non-empty string")

    def opt_text(self, path: str) -> str:
        """The string at `path`; "" when absent or null."""
        return self._optional(path, _is_str, "a string", "")

    def integer(self, path: str) -> int:
        return self._required(path, _is_int, "an integer")

    def opt_integer(self, path: str) -> int | None:
        return self._optional(path, _is_int, "an integer", None)

    def flag(self, path: str) -> bool:
        return self._required(path, _is_bool, "a boolean")

    def opt_flag(self, path: str) -> bool:
        """The boolean at `path`; False when absent or null."""
        return self._optional(path, _is_bool, "a boolean", False)

    def commit_messages(self, path: str) -> tuple[str, ...]:
        """The `message` of each commit in the array at `path`; () when absent."""
        value = self._lookup(path)
        if value is _MISSING or value is None:
            return ()
        if not isinstance(value, list):
            raise self._wrong(path, value, "an array")
        messages = []
        for index, commit in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(commit, dict):
                raise self._wrong(where, commit, "an object")
            message = commit.get("message")
            if message is not None and not isinstance(message, str):
                raise self._wrong(f"{where}.message", message, "a string")
            messages.append(message or "")
        return tuple(messages)


def _is_zero_sha(sha: str) -> bool:
    return bool(sha) and set(sha) == {"0"}


def _ignored(forge: ForgeName, delivery: str, reason: str, repo: Repo | None = None,
             installation_id: int | None = None) -> Event:
    return Event(forge=forge, kind="ignored", delivery=delivery, repo=repo, reason=reason,
                 installation_id=installation_id)


def _branch_update(forge: ForgeName, delivery: str, ref: str, after: str, repo: Repo,
                   installation_id: int | None) -> Event | None:
    """The "ignored" event for a push that is not a branch update of the default branch."""
    if ref.startswith("refs/tags/"):
        return _ignored(forge, delivery, f"tag push {ref}: tags are not reconciled", repo,
                        installation_id)
    if not ref.startswith("refs/heads/"):
        return _ignored(forge, delivery, f"push to {ref}, which is not a branch", repo,
                        installation_id)
    branch = ref[len("refs/heads/"):]
    if _is_zero_sha(after):
        return _ignored(forge, delivery, f"branch {branch} was deleted", repo, installation_id)
    if branch != repo.default_branch:
        return _ignored(forge, delivery, f"push to branch {branch}, not the default branch "
                        f"{repo.default_branch}", repo, installation_id)
    return None


def _base_not_default(forge: ForgeName, delivery: str, what: str, base_ref: str, repo: Repo,
                      installation_id: int | None) -> Event | None:
    if base_ref == repo.default_branch:
        return None
    return _ignored(forge, delivery, f"{what} targets branch {base_ref}, not the default branch "
                    f"{repo.default_branch}", repo, installation_id)


# --- GitHub -------------------------------------------------------------------------------------

_GITHUB_OPENED = frozenset({"opened", "reopened", "ready_for_review"})


def _github_repo(p: _Payload) -> Repo:
    return Repo(forge="github", full_name=p.text("repository.full_name"),
                clone_url=p.text("repository.clone_url"),
                default_branch=p.text("repository.default_branch"))


def _github_repo_if_any(p: _Payload) -> Repo | None:
    """The repository of an event that is ignored anyway: None rather than an error when the
    payload names none or names it incompletely."""
    try:
        return _github_repo(p) if p.has("repository") else None
    except EventError:
        return None


def parse_github(event_name: str, delivery: str, payload: dict[str, Any]) -> Event:
    """The `Event` of one verified GitHub delivery: `event_name` from `X-GitHub-Event`,
    `delivery` from `X-GitHub-Delivery`, `payload` the decoded JSON body. Raises `EventError`
    when a field the event needs is missing or mistyped."""
    p = _Payload("github", event_name, payload)
    installation_id = p.opt_integer("installation.id")
    if event_name == "push":
        return _github_push(p, delivery, installation_id)
    if event_name == "pull_request":
        return _github_pull_request(p, delivery, installation_id)
    if event_name == "issue_comment":
        return _github_issue_comment(p, delivery, installation_id)
    repo = _github_repo_if_any(p)
    if event_name == "ping":
        return _ignored("github", delivery, "ping: the webhook is set up", repo, installation_id)
    what = f"event {event_name!r}" if event_name else f"a delivery without {GITHUB_EVENT_HEADER}"
    return _ignored("github", delivery, f"GitHub {what} is not acted on", repo, installation_id)


def _github_push(p: _Payload, delivery: str, installation_id: int | None) -> Event:
    repo = _github_repo(p)
    ref, after = p.text("ref"), p.text("after")
    skipped = _branch_update("github", delivery, ref, after, repo, installation_id)
    if skipped is not None:
        return skipped
    pusher = p.opt_text("pusher.name") or p.opt_text("sender.login")
    return Event(forge="github", kind="push", delivery=delivery, repo=repo, ref=ref,
                 before=p.text("before"), after=after, pusher=pusher,
                 commit_messages=p.commit_messages("commits"), installation_id=installation_id)


def _github_pull_request(p: _Payload, delivery: str, installation_id: int | None) -> Event:
    action = p.text("action")
    kind: EventKind
    if action in _GITHUB_OPENED:
        kind = "change_opened"
    elif action == "synchronize":
        kind = "change_updated"
    elif action == "closed":
        kind = "change_merged" if p.flag("pull_request.merged") else "change_closed"
    else:
        return _ignored("github", delivery, f"pull_request action {action!r} is not acted on",
                        _github_repo_if_any(p), installation_id)
    repo = _github_repo(p)
    number = p.integer("pull_request.number")
    base_ref = p.text("pull_request.base.ref")
    skipped = _base_not_default("github", delivery, f"pull request #{number}", base_ref, repo,
                                installation_id)
    if skipped is not None:
        return skipped
    return Event(
        forge="github", kind=kind, delivery=delivery, repo=repo, number=number,
        head_sha=p.text("pull_request.head.sha"), base_ref=base_ref,
        base_sha=p.text("pull_request.base.sha"),
        # merge_commit_sha of an open PR is GitHub's test merge, not a commit of the base
        merge_sha=p.text("pull_request.merge_commit_sha") if kind == "change_merged" else "",
        draft=p.opt_flag("pull_request.draft"), author=p.text("pull_request.user.login"),
        url=p.text("pull_request.html_url"), from_fork=_github_from_fork(p, repo),
        installation_id=installation_id)


def _github_from_fork(p: _Payload, repo: Repo) -> bool:
    """The head repository is not the base's: another full name, or null (a deleted fork)."""
    head = p.opt_text("pull_request.head.repo.full_name")
    base = p.opt_text("pull_request.base.repo.full_name") or repo.full_name
    return not head or head.lower() != base.lower()


def _github_issue_comment(p: _Payload, delivery: str, installation_id: int | None) -> Event:
    action = p.text("action")
    if not p.has("issue.pull_request"):
        return _ignored("github", delivery, "comment on an issue, not on a pull request",
                        _github_repo_if_any(p), installation_id)
    if action != "created":
        return _ignored("github", delivery, f"issue_comment action {action!r} is not acted on",
                        _github_repo_if_any(p), installation_id)
    url = p.opt_text("issue.pull_request.html_url") or p.text("issue.html_url")
    return Event(
        forge="github", kind="comment", delivery=delivery, repo=_github_repo(p),
        number=p.integer("issue.number"), author=p.opt_text("issue.user.login"), url=url,
        comment_id=p.integer("comment.id"), comment_body=p.opt_text("comment.body"),
        commenter=p.text("comment.user.login"), commenter_is_bot=p.opt_text("comment.user.type") == "Bot",
        installation_id=installation_id)


# --- GitLab -------------------------------------------------------------------------------------

_GITLAB_OPENED = frozenset({"open", "reopen"})


def _gitlab_repo(p: _Payload) -> Repo:
    return Repo(forge="gitlab", full_name=p.text("project.path_with_namespace"),
                clone_url=p.text("project.git_http_url"),
                default_branch=p.text("project.default_branch"), project_id=p.integer("project.id"))


def _gitlab_repo_if_any(p: _Payload) -> Repo | None:
    try:
        return _gitlab_repo(p) if p.has("project") else None
    except EventError:
        return None


def parse_gitlab(event_name: str, delivery: str, payload: dict[str, Any]) -> Event:
    """The `Event` of one verified GitLab delivery: `event_name` from `X-Gitlab-Event`,
    `delivery` from `X-Gitlab-Event-UUID`, `payload` the decoded JSON body. Raises `EventError`
    when a field the event needs is missing or mistyped."""
    p = _Payload("gitlab", event_name, payload)
    if event_name == "Push Hook":
        return _gitlab_push(p, delivery)
    if event_name == "Merge Request Hook":
        return _gitlab_merge_request(p, delivery)
    if event_name == "Note Hook":
        return _gitlab_note(p, delivery)
    repo = _gitlab_repo_if_any(p)
    if event_name == "Tag Push Hook":
        return _ignored("gitlab", delivery, f"tag push {p.opt_text('ref')}: tags are not reconciled",
                        repo)
    what = f"event {event_name!r}" if event_name else f"a delivery without {GITLAB_EVENT_HEADER}"
    return _ignored("gitlab", delivery, f"GitLab {what} is not acted on", repo)


def _gitlab_push(p: _Payload, delivery: str) -> Event:
    repo = _gitlab_repo(p)
    ref, after = p.text("ref"), p.text("after")
    skipped = _branch_update("gitlab", delivery, ref, after, repo, None)
    if skipped is not None:
        return skipped
    return Event(forge="gitlab", kind="push", delivery=delivery, repo=repo, ref=ref,
                 before=p.text("before"), after=after,
                 pusher=p.opt_text("user_username") or p.opt_text("user_name"),
                 commit_messages=p.commit_messages("commits"))


def _gitlab_draft(p: _Payload, prefix: str) -> bool:
    return p.opt_flag(f"{prefix}.draft") or p.opt_flag(f"{prefix}.work_in_progress")


def _gitlab_merge_request(p: _Payload, delivery: str) -> Event:
    action = p.opt_text("object_attributes.action")
    kind: EventKind
    if action in _GITLAB_OPENED:
        kind = "change_opened"
    elif action == "update" and p.has("object_attributes.oldrev"):
        kind = "change_updated"
    elif action == "merge":
        kind = "change_merged"
    elif action == "close":
        kind = "change_closed"
    else:
        reason = ("merge request update without new commits (no oldrev)" if action == "update"
                  else f"merge request action {action!r} is not acted on")
        return _ignored("gitlab", delivery, reason, _gitlab_repo_if_any(p))
    repo = _gitlab_repo(p)
    number = p.integer("object_attributes.iid")
    base_ref = p.text("object_attributes.target_branch")
    skipped = _base_not_default("gitlab", delivery, f"merge request !{number}", base_ref, repo,
                                None)
    if skipped is not None:
        return skipped
    head_sha = p.text("object_attributes.last_commit.id")
    merge_sha = ""
    if kind == "change_merged":
        # merge_commit_sha is null for a fast-forward merge: the target branch then points at
        # the MR's (rebased) head; a squash merge may report squash_commit_sha instead
        merge_sha = (p.opt_text("object_attributes.merge_commit_sha")
                     or p.opt_text("object_attributes.squash_commit_sha") or head_sha)
    return Event(
        forge="gitlab", kind=kind, delivery=delivery, repo=repo, number=number,
        head_sha=head_sha, base_ref=base_ref, merge_sha=merge_sha,
        draft=_gitlab_draft(p, "object_attributes"), url=p.opt_text("object_attributes.url"),
        from_fork=_gitlab_from_fork(p, "object_attributes"))


def _gitlab_from_fork(p: _Payload, prefix: str) -> bool:
    """source_project_id differs from target_project_id; False when either is not sent."""
    source = p.opt_integer(f"{prefix}.source_project_id")
    target = p.opt_integer(f"{prefix}.target_project_id")
    return source is not None and target is not None and source != target


def _gitlab_note(p: _Payload, delivery: str) -> Event:
    noteable = p.opt_text("object_attributes.noteable_type")
    if noteable != "MergeRequest":
        return _ignored("gitlab", delivery,
                        f"comment on a {noteable or 'unknown object'}, not on a merge request",
                        _gitlab_repo_if_any(p))
    action = p.opt_text("object_attributes.action")  # absent before GitLab 16.11: a new note
    if action not in ("", "create"):
        return _ignored("gitlab", delivery, f"note action {action!r} is not acted on",
                        _gitlab_repo_if_any(p))
    if p.opt_flag("object_attributes.system"):
        return _ignored("gitlab", delivery, "system note", _gitlab_repo_if_any(p))
    return Event(
        forge="gitlab", kind="comment", delivery=delivery, repo=_gitlab_repo(p),
        number=p.integer("merge_request.iid"), head_sha=p.opt_text("merge_request.last_commit.id"),
        base_ref=p.opt_text("merge_request.target_branch"),
        draft=_gitlab_draft(p, "merge_request"), url=p.opt_text("merge_request.url"),
        from_fork=_gitlab_from_fork(p, "merge_request"),
        comment_id=p.integer("object_attributes.id"), comment_body=p.opt_text("object_attributes.note"),
        # The hook's user has no bot flag in GitLab's published payloads; read one if sent.
        commenter=p.text("user.username"), commenter_is_bot=p.opt_flag("user.bot"))
