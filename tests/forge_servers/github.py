"""A stand-in for GitHub's REST API, for tests: plain HTTP on 127.0.0.1, in a thread.

It serves what PyGithub (2.x) requests for `bot/forges/github.py`, with the response shapes of
GitHub's published REST API (docs.github.com/rest, API version 2022-11-28), checked against the
api.github.com responses PyGithub records and replays in its own tests (tests/ReplayData) and
against the fields PyGithub's classes parse:

    GET   /repos/{owner}/{repo}                                  repository
    GET   /repos/{owner}/{repo}/pulls                            pull requests (state, base, sort, direction;
                                                                 "pull-request-simple" items), paginated
    GET   /repos/{owner}/{repo}/pulls/{n}                        pull request
    GET   /repos/{owner}/{repo}/pulls/{n}/reviews                reviews, oldest first, paginated
    GET   /repos/{owner}/{repo}/issues/{n}/comments              issue comments, paginated (Link)
    POST  /repos/{owner}/{repo}/issues/{n}/comments              201
    PATCH /repos/{owner}/{repo}/issues/comments/{id}
    POST  /repos/{owner}/{repo}/statuses/{sha}                   201
    GET   /repos/{owner}/{repo}/commits/{sha}/statuses           newest first, paginated
    GET   /repos/{owner}/{repo}/collaborators/{user}/permission
    POST  /repos/{owner}/{repo}/issues/comments/{id}/reactions   201 new, 200 one the user already left
    PUT   /repos/{owner}/{repo}/pulls/{n}/merge                  200 {sha, merged, message}; 405 not
                                                                 mergeable, 409 head moved, 422 invalid
    GET   /repos/{owner}/{repo}/commits/{ref}/check-runs         {total_count, check_runs}, filter
                                                                 latest (default) or all, paginated
    GET   /repos/{owner}/{repo}/installation                     (GitHub App JWT)
    POST  /app/installations/{id}/access_tokens                  201 (GitHub App JWT, RS256, verified)
    GET   /app                                                   the authenticated App (JWT)
    GET   /user                                                  the token's user (an installation
                                                                 token: 403, as GitHub answers it)
    GET   /orgs/{org}/teams/{team_slug}                          team
    GET   /orgs/{org}/teams/{team_slug}/memberships/{username}   {url, role, state}; 404 not a member
    GET   /rate_limit

`/repositories/{id}/...` is the same as `/repos/{owner}/{repo}/...` (GitHub's Link headers use
that form). With `prefix="/api/v3"` every path sits under it, as on GitHub Enterprise Server.

State lives in memory: tests set it up (`add_repo`, `add_pull`, `update_pull`, `add_review`,
`add_comment`, `set_permission`, `add_app`, `add_installation`, `add_team`,
`set_team_membership`, `add_check_run`, `set_merge_result`) and assert on it (`comments`,
`statuses`, `reactions`, `repo(...).pulls`) and on `requests`, every request received (method, path, query, JSON body, which credential it
carried, the status answered). Every call needs a valid credential: a token added with
`add_token`, an installation token this server issued (unexpired, for a repository of its
installation), or, on the App endpoints, a JWT signed with a registered App's key; anything else
gets 401. `fail_next(n, status)` answers the next n calls with 500, 502, 429 (Retry-After) or a
403 primary rate limit (x-ratelimit-remaining: 0) instead.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jwt

DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000
STATUS_STATES = ("error", "failure", "pending", "success")
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
COMMENT_LIMIT = 65536
DESCRIPTION_LIMIT = 140
JWT_MAX_LIFETIME = 600  # GitHub: exp no more than 10 minutes after iat
_SHA = re.compile(r"^[0-9a-f]{40}$")
# role -> (legacy `permission`, user.permissions flags)
_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("admin", ("admin", "maintain", "push", "triage", "pull")),
    "maintain": ("write", ("maintain", "push", "triage", "pull")),
    "write": ("write", ("push", "triage", "pull")),
    "triage": ("read", ("triage", "pull")),
    "read": ("read", ("pull",)),
    "none": ("none", ()),
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str  # as requested, prefix included, without the query
    route: str  # without the prefix; /repositories/{id} rewritten to /repos/{owner}/{name}
    query: dict[str, str]
    body: Any  # the parsed JSON body, or None
    auth: str  # "token" | "installation" | "jwt" | "none" | "invalid"
    who: str  # the token's login, "installation:<id>" or "app:<id>"; "" when not authenticated
    user_agent: str
    status: int = 0


@dataclass
class Pull:
    number: int
    title: str
    user: str
    head_sha: str
    head_ref: str
    base_sha: str
    base_ref: str
    state: str = "open"
    merged: bool = False
    merge_commit_sha: str | None = None
    draft: bool = False
    body: str = ""
    created_at: str = field(default_factory=_now)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    # The head's repository: "" the base repository itself, a full name a fork's, None a fork
    # that was deleted (GitHub then reports head.repo null).
    head_repo: str | None = ""
    # What the single pull request reports while open (mergeable_state: clean, unstable,
    # has_hooks, dirty, draft, behind, blocked, unknown; mergeable None while computing).
    mergeable: bool | None = True
    mergeable_state: str = "clean"
    # What PUT .../merge does next (`set_merge_result`): {"sha": ...} or {"status": ..., "message": ...}.
    merge_result: dict[str, Any] = field(default_factory=dict)


@dataclass
class RepoState:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    pulls: dict[int, Pull] = field(default_factory=dict)
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (role_name, base role)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    path_contains: str | None
    rate_limited: bool = True


class _Reply(Exception):
    """Answer the request with this status, JSON body and headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _error(status: int, message: str, **extra: Any) -> _Reply:
    return _Reply(status, {"message": message, "documentation_url": DOCS, "status": str(status), **extra})


class GitHubServer:
    """The stand-in; a context manager. `api_url` is what GitHubForge's `api_url` takes."""

    def __init__(self, *, prefix: str = "", installation_token_ttl: float = 3600.0) -> None:
        self.prefix = prefix.rstrip("/")
        self.installation_token_ttl = installation_token_ttl
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._ids = iter(range(1_000_001, 10**9))
        self._tokens: dict[str, str] = {}  # token -> login
        self._users: dict[str, int] = {}
        self._repos: dict[str, RepoState] = {}
        self._comments: dict[int, dict[str, Any]] = {}  # id -> {repo, number, body, user, created_at, updated_at}
        self._statuses: list[dict[str, Any]] = []
        self._apps: dict[str, dict[str, Any]] = {}  # app id -> {key, slug}
        self._installations: dict[int, dict[str, Any]] = {}  # id -> {app, account, repos}
        self._installation_tokens: dict[str, tuple[int, float]] = {}  # token -> (installation, expires)
        self._teams: dict[tuple[str, str], dict[str, Any]] = {}  # (org, slug) -> {id, name, members}
        self._check_runs: list[dict[str, Any]] = []
        self._reactions: dict[int, list[dict[str, Any]]] = {}  # comment id -> reactions
        self._failures: list[_Failure] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self.web_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.web_url}{self.prefix}"
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> GitHubServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), name="github-stand-in",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> GitHubServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- setting up -------------------------------------------------------------------------

    def add_token(self, token: str, login: str = "promisebot") -> None:
        with self._lock:
            self._tokens[token] = login
            self._user_id(login)

    def add_user(self, login: str) -> None:
        with self._lock:
            self._user_id(login)

    def add_repo(self, full_name: str, *, default_branch: str = "main", private: bool = True) -> RepoState:
        owner, name = full_name.split("/")
        with self._lock:
            self._user_id(owner)
            repo = RepoState(next(self._ids), owner, name, default_branch, private)
            self._repos[full_name] = repo
            return repo

    def add_pull(self, full_name: str, number: int, *, head_sha: str, base_sha: str, base_ref: str = "main",
                 head_ref: str = "feature", user: str = "alice", title: str = "", state: str = "open",
                 merged: bool = False, merge_commit_sha: str | None = None, draft: bool = False,
                 head_repo: str | None = "") -> Pull:
        """`head_repo`: "" for a branch of the repository itself, a fork's full name, or None for
        a fork deleted since (head.repo null)."""
        with self._lock:
            self._user_id(user)
            pull = Pull(number, title or f"Pull request {number}", user, head_sha, head_ref, base_sha, base_ref,
                        state, merged, merge_commit_sha, draft, head_repo=head_repo,
                        mergeable_state="draft" if draft else "clean")
            self._repos[full_name].pulls[number] = pull
            return pull

    def update_pull(self, full_name: str, number: int, **fields: Any) -> None:
        with self._lock:
            pull = self._repos[full_name].pulls[number]
            for key, value in fields.items():
                if not hasattr(pull, key):
                    raise AttributeError(key)
                setattr(pull, key, value)

    def add_review(self, full_name: str, number: int, user: str, state: str, *, commit_id: str | None = None,
                   body: str = "") -> int:
        """A submitted review: state APPROVED, CHANGES_REQUESTED, COMMENTED or DISMISSED."""
        assert state in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"), state
        with self._lock:
            self._user_id(user)
            pull = self._repos[full_name].pulls[number]
            review_id = next(self._ids)
            pull.reviews.append({"id": review_id, "user": user, "state": state, "body": body,
                                 "commit_id": commit_id or pull.head_sha, "submitted_at": _now()})
            return review_id

    def add_comment(self, full_name: str, number: int, body: str, *, user: str = "someone") -> int:
        with self._lock:
            self._user_id(user)
            return self._new_comment(full_name, number, body, user)

    def set_permission(self, full_name: str, user: str, role: str, *, base: str | None = None) -> None:
        """The user's role on the repository: admin, maintain, write, triage, read, none, or a
        custom role name with the base role it extends (`base`)."""
        base = base or role
        assert base in _ROLES, base
        with self._lock:
            self._user_id(user)
            self._repos[full_name].roles[user] = (role, base)

    def add_app(self, app_id: int | str, public_key_pem: str | bytes, *, slug: str = "promisebot") -> None:
        with self._lock:
            key = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
            self._apps[str(app_id)] = {"key": key, "slug": slug}
            self._user_id(f"{slug}[bot]")

    def add_installation(self, app_id: int | str, installation_id: int, repos: list[str],
                         *, account: str | None = None) -> None:
        with self._lock:
            account = account or repos[0].split("/")[0]
            self._user_id(account)
            self._installations[installation_id] = {"app": str(app_id), "account": account, "repos": list(repos)}

    def add_team(self, org: str, slug: str, *, name: str = "", members: list[str] | None = None) -> None:
        """A team of organization `org`, with `members` active."""
        with self._lock:
            self._user_id(org)
            self._teams[(org, slug)] = {"id": next(self._ids), "name": name or slug, "members": {}}
            for login in members or []:
                self.set_team_membership(org, slug, login)

    def set_team_membership(self, org: str, slug: str, login: str, *, state: str = "active",
                            role: str = "member") -> None:
        """`login`'s membership of the team: state active or pending (invited), role member or
        maintainer."""
        assert state in ("active", "pending") and role in ("member", "maintainer")
        with self._lock:
            self._user_id(login)
            self._teams[(org, slug)]["members"][login] = {"state": state, "role": role}

    def add_check_run(self, full_name: str, sha: str, name: str, *, status: str = "completed",
                      conclusion: str | None = "success") -> int:
        """A check run on `sha`: status queued, in_progress or completed; conclusion (completed
        only) success, failure, neutral, cancelled, skipped, timed_out or action_required."""
        assert status in ("queued", "in_progress", "completed"), status
        with self._lock:
            run_id = next(self._ids)
            self._check_runs.append({"repo": full_name, "sha": sha, "id": run_id, "name": name, "status": status,
                                     "conclusion": conclusion if status == "completed" else None,
                                     "started_at": _now()})
            return run_id

    def set_merge_result(self, full_name: str, number: int, *, sha: str | None = None, status: int | None = None,
                         message: str = "") -> None:
        """What the next merge of the pull request does: land as commit `sha` (default: a new
        sha), or be refused with `status` (405, 409, 422, 403...) and `message`. The stand-in
        knows no Git: it records the merge (state closed, merged, merge_commit_sha) and nothing
        else."""
        with self._lock:
            self._repos[full_name].pulls[number].merge_result = (
                {"status": status, "message": message} if status is not None else {"sha": sha})

    def revoke_installation_tokens(self) -> None:
        """Every installation token issued so far stops working (as when an App is reinstalled)."""
        with self._lock:
            self._installation_tokens.clear()

    def fail_next(self, count: int, status: int, *, retry_after: int | None = None,
                  path_contains: str | None = None, rate_limited: bool = True) -> None:
        """Answer the next `count` requests (those whose path contains `path_contains`, if
        given) with `status`: 403 is a primary rate limit (x-ratelimit-remaining 0, reset in
        `retry_after` or 60 s) unless `rate_limited` is False (then a permission refusal), 429 a
        secondary rate limit (Retry-After: `retry_after` or 60), 502 an HTML gateway page; any
        other status a JSON error, with Retry-After when `retry_after` is given."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, path_contains, rate_limited) for _ in range(count))

    # -- reading state ----------------------------------------------------------------------

    def repo(self, full_name: str) -> RepoState:
        with self._lock:
            return self._repos[full_name]

    def comments(self, full_name: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c, id=i) for i, c in self._comments.items()
                    if c["repo"] == full_name and c["number"] == number]

    def reactions(self, full_name: str, comment_id: int) -> list[dict[str, Any]]:
        """The reactions on an issue comment: {id, content, user}, oldest first."""
        with self._lock:
            comment = self._comments.get(comment_id)
            if comment is None or comment["repo"] != full_name:
                return []
            return [dict(r) for r in self._reactions.get(comment_id, [])]

    def statuses(self, full_name: str, sha: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._statuses if s["repo"] == full_name and (sha is None or s["sha"] == sha)]

    def calls(self, method: str | None = None, route: str | None = None) -> list[Recorded]:
        """Recorded requests, by method and route (a regex matched against the whole route)."""
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (route is None or re.fullmatch(route, r.route))]

    # -- helpers ----------------------------------------------------------------------------

    def _user_id(self, login: str) -> int:
        if login not in self._users:
            self._users[login] = next(self._ids)
        return self._users[login]

    def _user(self, login: str) -> dict[str, Any]:
        api = f"{self.api_url}/users/{quote(login)}"
        return {
            "login": login, "id": self._user_id(login), "node_id": f"U_{self._user_id(login)}",
            "avatar_url": f"{self.web_url}/avatars/u/{self._user_id(login)}", "gravatar_id": "",
            "url": api, "html_url": f"{self.web_url}/{quote(login)}", "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos", "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "Bot" if login.endswith("[bot]") else "User", "site_admin": False,
        }

    def _repo(self, repo: RepoState) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        return {
            "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
            "private": repo.private, "owner": self._user(repo.owner), "html_url": f"{self.web_url}/{repo.full_name}",
            "description": None, "fork": False, "url": api,
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}", "commits_url": f"{api}/commits{{/sha}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}", "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}", "statuses_url": f"{api}/statuses/{{sha}}",
            "git_url": f"git://127.0.0.1:{self.port}/{repo.full_name}.git",
            "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
            "clone_url": f"{self.web_url}/{repo.full_name}.git", "svn_url": f"{self.web_url}/{repo.full_name}",
            "homepage": None, "size": 1, "language": None, "archived": False, "disabled": False,
            "visibility": "private" if repo.private else "public", "default_branch": repo.default_branch,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": _now(), "pushed_at": _now(),
        }

    def _pull(self, repo: RepoState, pull: Pull) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}"
        html = f"{self.web_url}/{repo.full_name}/pull/{pull.number}"

        def part(ref: str, sha: str, head_repo: str | None = "") -> dict[str, Any]:
            if head_repo == "":
                return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": self._user(repo.owner),
                        "repo": self._repo(repo)}
            if head_repo is None:  # a deleted fork
                return {"label": f"unknown:{ref}", "ref": ref, "sha": sha, "user": None, "repo": None}
            fork = self._repos.get(head_repo) or self._fork(head_repo)
            return {"label": f"{fork.owner}:{ref}", "ref": ref, "sha": sha, "user": self._user(fork.owner),
                    "repo": dict(self._repo(fork), fork=True)}

        closed = pull.state == "closed"
        return {
            "url": f"{api}/pulls/{pull.number}", "id": 7_000_000 + pull.number, "node_id": f"PR_{pull.number}",
            "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull.number}", "commits_url": f"{api}/pulls/{pull.number}/commits",
            "review_comments_url": f"{api}/pulls/{pull.number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{pull.number}/comments", "statuses_url": f"{api}/statuses/{pull.head_sha}",
            "number": pull.number, "state": pull.state, "locked": False, "title": pull.title,
            "user": self._user(pull.user), "body": pull.body, "labels": [], "milestone": None,
            "active_lock_reason": None, "created_at": pull.created_at, "updated_at": _now(),
            "closed_at": _now() if closed else None, "merged_at": _now() if pull.merged else None,
            "merge_commit_sha": pull.merge_commit_sha, "assignee": None, "assignees": [],
            "requested_reviewers": [], "requested_teams": [],
            "head": part(pull.head_ref, pull.head_sha, pull.head_repo), "base": part(pull.base_ref, pull.base_sha),
            "_links": {"self": {"href": f"{api}/pulls/{pull.number}"}, "html": {"href": html},
                       "issue": {"href": f"{api}/issues/{pull.number}"},
                       "comments": {"href": f"{api}/issues/{pull.number}/comments"},
                       "statuses": {"href": f"{api}/statuses/{pull.head_sha}"}},
            "author_association": "CONTRIBUTOR", "auto_merge": None, "draft": pull.draft, "merged": pull.merged,
            "mergeable": None if closed else pull.mergeable, "rebaseable": None if closed else pull.mergeable,
            "mergeable_state": "unknown" if closed else pull.mergeable_state,
            "merged_by": self._user(repo.owner) if pull.merged else None, "comments": 0, "review_comments": 0,
            "maintainer_can_modify": False, "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1,
        }

    def _fork(self, full_name: str) -> RepoState:
        """A fork the stand-in holds no state for, shaped as a repository (a stable id per name)."""
        owner, name = full_name.split("/")
        self._user_id(owner)
        return RepoState(self._user_id(f"repo:{full_name}"), owner, name, "main", False)

    def _review(self, repo: RepoState, pull: Pull, review: dict[str, Any]) -> dict[str, Any]:
        html = f"{self.web_url}/{repo.full_name}/pull/{pull.number}#pullrequestreview-{review['id']}"
        pull_url = f"{self.api_url}/repos/{repo.full_name}/pulls/{pull.number}"
        return {
            "id": review["id"], "node_id": f"PRR_{review['id']}", "user": self._user(review["user"]),
            "body": review["body"], "state": review["state"], "html_url": html, "pull_request_url": pull_url,
            "author_association": "MEMBER", "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
            "submitted_at": review["submitted_at"], "commit_id": review["commit_id"],
        }

    def _new_comment(self, full_name: str, number: int, body: str, user: str) -> int:
        comment_id = next(self._ids)
        now = _now()
        self._comments[comment_id] = {"repo": full_name, "number": number, "body": body, "user": user,
                                      "created_at": now, "updated_at": now}
        return comment_id

    def _comment(self, comment_id: int) -> dict[str, Any]:
        c = self._comments[comment_id]
        api = f"{self.api_url}/repos/{c['repo']}"
        return {
            "id": comment_id, "node_id": f"IC_{comment_id}", "url": f"{api}/issues/comments/{comment_id}",
            "html_url": f"{self.web_url}/{c['repo']}/pull/{c['number']}#issuecomment-{comment_id}",
            "body": c["body"], "user": self._user(c["user"]), "created_at": c["created_at"],
            "updated_at": c["updated_at"], "issue_url": f"{api}/issues/{c['number']}",
            "author_association": "NONE", "performed_via_github_app": None,
        }

    def _page(self, items: list[Any], query: dict[str, str], link_path: str) -> _Reply:
        """One page of `items` as GitHub paginates: per_page (default 30, at most 100), page (from
        1), and a Link header with next/last/first/prev (absolute URLs, query kept)."""
        try:
            per_page = min(max(int(query.get("per_page", "30")), 1), 100)
            page = max(int(query.get("page", "1")), 1)
        except ValueError:
            raise _error(422, "Validation Failed") from None
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def url(n: int) -> str:
            params = {k: v for k, v in query.items() if k != "page"}
            params["page"] = str(n)
            return f"{self.api_url}{link_path}?{urlencode(params)}"

        links = []
        if page < pages:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(pages)}>; rel="last"']
        if page > 1:
            links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
        return _Reply(200, chunk, {"Link": ", ".join(links)} if links else {})

    # -- authentication ---------------------------------------------------------------------

    def _authenticate(self, header: str) -> tuple[str, str, Any]:
        """(auth kind, who, detail): detail is the installation id or the app id."""
        if not header:
            return "none", "", None
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme not in ("token", "bearer") or not value:
            return "invalid", "", None
        if value in self._tokens:
            return "token", self._tokens[value], None
        if value in self._installation_tokens:
            installation, expires = self._installation_tokens[value]
            if expires <= time.time():
                return "invalid", "", None
            return "installation", f"installation:{installation}", installation
        if value.count(".") == 2:
            return self._verify_jwt(value)
        return "invalid", "", None

    def _verify_jwt(self, token: str) -> tuple[str, str, Any]:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            issuer = str(claims.get("iss", ""))
            app = self._apps.get(issuer)
            if app is None:
                return "invalid", "", None
            verified = jwt.decode(token, app["key"], algorithms=["RS256"],
                                  options={"require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            return "invalid", "", None
        if int(verified["exp"]) - int(verified["iat"]) > JWT_MAX_LIFETIME + 60 or \
                int(verified["exp"]) > time.time() + JWT_MAX_LIFETIME:
            return "invalid", "", None  # 'exp' too far in the future
        return "jwt", f"app:{issuer}", issuer

    # -- routing ----------------------------------------------------------------------------

    def _route(self, path: str) -> str:
        if self.prefix:
            if not (path == self.prefix or path.startswith(self.prefix + "/")):
                raise _error(404, "Not Found")
            path = path[len(self.prefix):] or "/"
        m = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if m:
            for repo in self._repos.values():
                if repo.id == int(m.group(1)):
                    return f"/repos/{repo.full_name}{m.group(2) or ''}"
            raise _error(404, "Not Found")
        return path

    def _handle(self, method: str, route: str, query: dict[str, str], body: Any, auth: tuple[str, str, Any]) -> _Reply:
        kind, who, detail = auth
        if kind == "none":
            raise _error(401, "Requires authentication")
        if kind == "invalid":
            raise _error(401, "Bad credentials")

        if route == "/rate_limit" and method == "GET":
            core = {"limit": RATE_LIMIT, "remaining": RATE_LIMIT, "reset": int(time.time()) + 3600, "used": 0,
                    "resource": "core"}
            return _Reply(200, {"resources": {"core": core}, "rate": core})

        if route == "/app" and method == "GET":
            if kind != "jwt":
                raise _error(401, "A JSON web token could not be decoded")
            return _Reply(200, self._app(detail))

        if route == "/user" and method == "GET":
            if kind == "jwt":
                raise _error(401, "Bad credentials")
            if kind == "installation":
                raise _error(403, "Resource not accessible by integration")
            return _Reply(200, dict(self._user(who), name=who.title(), company=None, blog="", location=None,
                                    email=None, hireable=None, bio=None, twitter_username=None, public_repos=0,
                                    public_gists=0, followers=0, following=0, created_at="2024-01-01T00:00:00Z",
                                    updated_at="2024-01-01T00:00:00Z"))

        m = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)(?:/memberships/([^/]+))?", route)
        if m and method == "GET":
            if kind == "jwt":
                raise _error(401, "Bad credentials")
            org, slug = unquote(m.group(1)), unquote(m.group(2))
            team = self._teams.get((org, slug))
            if team is None or (kind == "installation" and self._installations[detail]["account"] != org):
                raise _error(404, "Not Found")
            if m.group(3) is None:
                return _Reply(200, self._team(org, slug, team))
            login = unquote(m.group(3))
            membership = team["members"].get(login)
            if membership is None:
                raise _error(404, "Not Found")
            return _Reply(200, {"url": f"{self.api_url}/teams/{team['id']}/memberships/{quote(login)}",
                                "role": membership["role"], "state": membership["state"]})

        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", route)
        if m and method == "POST":
            if kind != "jwt":
                raise _error(401, "A JSON web token could not be decoded")
            installation = self._installations.get(int(m.group(1)))
            if installation is None or installation["app"] != detail:
                raise _error(404, "Not Found")
            token = "ghs_" + secrets.token_hex(18)
            expires = time.time() + self.installation_token_ttl
            self._installation_tokens[token] = (int(m.group(1)), expires)
            return _Reply(201, {
                "token": token,
                "expires_at": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": {"contents": "write", "issues": "write", "metadata": "read",
                                "pull_requests": "write", "statuses": "write"},
                "repository_selection": "selected",
            })

        m = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", route)
        if not m:
            raise _error(404, "Not Found")
        full_name, rest = f"{unquote(m.group(1))}/{unquote(m.group(2))}", m.group(3) or ""
        repo = self._repos.get(full_name)

        if rest == "/installation" and method == "GET":
            if kind != "jwt":
                raise _error(401, "A JSON web token could not be decoded")
            for installation_id, inst in self._installations.items():
                if inst["app"] == detail and full_name in inst["repos"]:
                    return _Reply(200, self._installation(installation_id, inst))
            raise _error(404, "Not Found")
        if kind == "jwt":
            raise _error(401, "Bad credentials")  # an App JWT only reaches the /app endpoints
        if repo is None or (kind == "installation" and full_name not in self._installations[detail]["repos"]):
            raise _error(404, "Not Found")
        return self._repo_call(method, repo, rest, query, body, who)

    def _app(self, app_id: str) -> dict[str, Any]:
        slug = self._apps[app_id]["slug"]
        owner = next((inst["account"] for inst in self._installations.values() if inst["app"] == app_id), slug)
        return {
            "id": int(app_id), "slug": slug, "node_id": f"A_{app_id}", "client_id": f"Iv1.{app_id}",
            "owner": self._user(owner), "name": slug.title(), "description": "", "external_url": self.web_url,
            "html_url": f"{self.web_url}/apps/{slug}", "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {"contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write",
                            "statuses": "write", "checks": "read", "members": "read"},
            "events": ["pull_request", "push", "issue_comment"],
            "installations_count": sum(1 for inst in self._installations.values() if inst["app"] == app_id),
        }

    def _team(self, org: str, slug: str, team: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.api_url}/organizations/{self._user_id(org)}/team/{team['id']}"
        return {
            "id": team["id"], "node_id": f"T_{team['id']}", "url": api,
            "html_url": f"{self.web_url}/orgs/{org}/teams/{slug}", "name": team["name"], "slug": slug,
            "description": None, "privacy": "closed", "notification_setting": "notifications_enabled",
            "permission": "pull", "members_url": f"{api}/members{{/member}}", "repositories_url": f"{api}/repos",
            "parent": None, "members_count": len(team["members"]), "repos_count": 0,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "organization": {"login": org, "id": self._user_id(org), "node_id": f"O_{self._user_id(org)}",
                             "url": f"{self.api_url}/orgs/{org}", "type": "Organization"},
        }

    def _installation(self, installation_id: int, inst: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": installation_id, "account": self._user(inst["account"]), "repository_selection": "selected",
            "access_tokens_url": f"{self.api_url}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.web_url}/settings/installations/{installation_id}", "app_id": int(inst["app"]),
            "app_slug": self._apps[inst["app"]]["slug"], "target_id": self._user_id(inst["account"]),
            "target_type": "Organization", "permissions": {"contents": "write", "issues": "write",
                                                           "metadata": "read", "pull_requests": "write",
                                                           "statuses": "write"},
            "events": ["pull_request", "push", "issue_comment"], "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "single_file_name": None, "suspended_at": None,
            "suspended_by": None,
        }

    def _repo_call(self, method: str, repo: RepoState, rest: str, query: dict[str, str], body: Any,
                   who: str) -> _Reply:
        author = self._app_login(who)
        if rest == "" and method == "GET":
            return _Reply(200, self._repo(repo))

        if rest == "/pulls" and method == "GET":
            return self._list_pulls(repo, query)

        m = re.fullmatch(r"/commits/([^/]+)/statuses", rest)
        if m and method == "GET":
            sha = unquote(m.group(1))
            if not _SHA.match(sha):
                raise _error(422, f"No commit found for SHA: {sha}")
            found = [self._status(s) for s in reversed(self._statuses)
                     if s["repo"] == repo.full_name and s["sha"] == sha]
            return self._page(found, query, f"/repositories/{repo.id}/commits/{sha}/statuses")

        m = re.fullmatch(r"/pulls/(\d+)(/reviews)?", rest)
        if m and method == "GET":
            pull = repo.pulls.get(int(m.group(1)))
            if pull is None:
                raise _error(404, "Not Found")
            if m.group(2):
                reviews = [self._review(repo, pull, r) for r in pull.reviews if r["state"] != "PENDING"]
                return self._page(reviews, query, f"/repositories/{repo.id}/pulls/{pull.number}/reviews")
            return _Reply(200, self._pull(repo, pull))

        m = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if m:
            number = int(m.group(1))
            if number not in repo.pulls:
                raise _error(404, "Not Found")
            if method == "GET":
                items = [self._comment(i) for i, c in self._comments.items()
                         if c["repo"] == repo.full_name and c["number"] == number]
                return self._page(items, query, f"/repositories/{repo.id}/issues/{number}/comments")
            if method == "POST":
                text = self._body_field(body, "body", "IssueComment", COMMENT_LIMIT)
                comment_id = self._new_comment(repo.full_name, number, text, author)
                return _Reply(201, self._comment(comment_id),
                              {"Location": f"{self.api_url}/repos/{repo.full_name}/issues/comments/{comment_id}"})

        m = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m and method in ("GET", "PATCH"):
            comment_id = int(m.group(1))
            comment = self._comments.get(comment_id)
            if comment is None or comment["repo"] != repo.full_name:
                raise _error(404, "Not Found")
            if method == "PATCH":
                comment["body"] = self._body_field(body, "body", "IssueComment", COMMENT_LIMIT)
                comment["updated_at"] = _now()
            return _Reply(200, self._comment(comment_id))

        m = re.fullmatch(r"/issues/comments/(\d+)/reactions", rest)
        if m and method == "POST":
            comment_id = int(m.group(1))
            comment = self._comments.get(comment_id)
            if comment is None or comment["repo"] != repo.full_name:
                raise _error(404, "Not Found")
            content = body.get("content") if isinstance(body, dict) else None
            if content not in REACTIONS:
                raise self._invalid("Reaction", "content", "invalid")
            reactions = self._reactions.setdefault(comment_id, [])
            for reaction in reactions:
                if reaction["user"] == author and reaction["content"] == content:
                    return _Reply(200, self._reaction(reaction))  # GitHub: "Reaction exists"
            reaction = {"id": next(self._ids), "user": author, "content": content, "created_at": _now()}
            reactions.append(reaction)
            return _Reply(201, self._reaction(reaction))

        m = re.fullmatch(r"/pulls/(\d+)/merge", rest)
        if m and method == "PUT":
            pull = repo.pulls.get(int(m.group(1)))
            if pull is None:
                raise _error(404, "Not Found")
            return self._merge(repo, pull, body)

        m = re.fullmatch(r"/commits/([^/]+)/check-runs", rest)
        if m and method == "GET":
            sha = unquote(m.group(1))
            runs = [r for r in self._check_runs if r["repo"] == repo.full_name and r["sha"] == sha]
            if query.get("filter", "latest") == "latest":
                latest: dict[str, dict[str, Any]] = {}
                for run in runs:
                    latest[run["name"]] = run
                runs = list(latest.values())
            elif query["filter"] != "all":
                raise self._invalid("CheckRun", "filter", "invalid")
            runs.sort(key=lambda r: r["id"], reverse=True)
            page = self._page([self._check_run(repo, r) for r in runs], query,
                              f"/repositories/{repo.id}/commits/{sha}/check-runs")
            return _Reply(200, {"total_count": len(runs), "check_runs": page.body}, page.headers)

        m = re.fullmatch(r"/statuses/([^/]+)", rest)
        if m and method == "POST":
            sha = unquote(m.group(1))
            if not _SHA.match(sha):
                raise _error(422, f"No commit found for SHA: {sha}")
            if not isinstance(body, dict) or body.get("state") not in STATUS_STATES:
                raise self._invalid("Status", "state", "invalid")
            description = body.get("description")
            if description is not None and len(str(description)) > DESCRIPTION_LIMIT:
                raise self._invalid("Status", "description", "custom",
                                    f"description is too long (maximum is {DESCRIPTION_LIMIT} characters)")
            now = _now()
            status = {"repo": repo.full_name, "sha": sha, "id": next(self._ids), "state": body["state"],
                      "description": description, "target_url": body.get("target_url"),
                      "context": body.get("context") or "default", "creator": author,
                      "created_at": now, "updated_at": now}
            self._statuses.append(status)
            return _Reply(201, self._status(status))

        m = re.fullmatch(r"/collaborators/([^/]+)/permission", rest)
        if m and method == "GET":
            user = unquote(m.group(1))
            if user not in self._users:
                raise _error(404, "Not Found")
            role, base = repo.roles.get(user, ("none", "none"))
            legacy, flags = _ROLES[base]
            permissions = {flag: flag in flags for flag in ("admin", "maintain", "push", "triage", "pull")}
            return _Reply(200, {"permission": legacy, "role_name": role,
                                "user": dict(self._user(user), permissions=permissions, role_name=role)})

        raise _error(404, "Not Found")

    def _merge(self, repo: RepoState, pull: Pull, body: Any) -> _Reply:
        """Merge a pull request, as GitHub answers: 405 when it cannot be merged (closed, a draft,
        conflicts, branch protection), 409 when `sha` is not its head, 422 for an unknown
        merge_method. No Git happens: the merge is recorded, with the sha `set_merge_result`
        gave (or a new one)."""
        body = body if isinstance(body, dict) else {}
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise self._invalid("PullRequest", "merge_method", "invalid")
        if pull.state != "open" or pull.merged:
            raise _error(405, "Pull Request is not mergeable")
        forced = pull.merge_result
        if forced.get("status") is not None:
            pull.merge_result = {}
            raise _error(int(forced["status"]), str(forced.get("message") or HTTPStatus(forced["status"]).phrase))
        if pull.draft or pull.mergeable is False or pull.mergeable_state in ("dirty", "draft"):
            raise _error(405, "Pull Request is not mergeable")
        if pull.mergeable_state == "blocked":
            raise _error(405, "At least 1 approving review is required by reviewers with write access.")
        if pull.mergeable_state == "behind":
            raise _error(405, "Head branch is out of date. Review and try the merge again.")
        if body.get("sha") is not None and body["sha"] != pull.head_sha:
            raise _error(409, "Head branch was modified. Review and try the merge again.")
        landed = forced.get("sha") or f"{next(self._ids):040x}"
        pull.merge_result = {}
        pull.state, pull.merged, pull.merge_commit_sha = "closed", True, landed
        return _Reply(200, {"sha": landed, "merged": True, "message": "Pull Request successfully merged"})

    def _reaction(self, reaction: dict[str, Any]) -> dict[str, Any]:
        return {"id": reaction["id"], "node_id": f"REA_{reaction['id']}", "user": self._user(reaction["user"]),
                "content": reaction["content"], "created_at": reaction["created_at"]}

    def _check_run(self, repo: RepoState, run: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.api_url}/repos/{repo.full_name}/check-runs/{run['id']}"
        return {
            "id": run["id"], "head_sha": run["sha"], "node_id": f"CR_{run['id']}", "external_id": "",
            "url": api, "html_url": f"{self.web_url}/{repo.full_name}/runs/{run['id']}", "details_url": None,
            "status": run["status"], "conclusion": run["conclusion"], "started_at": run["started_at"],
            "completed_at": run["started_at"] if run["status"] == "completed" else None,
            "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                       "annotations_url": f"{api}/annotations"},
            "name": run["name"], "check_suite": {"id": run["id"] + 1}, "app": None, "pull_requests": [],
        }

    def _status(self, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{self.api_url}/repos/{status['repo']}/statuses/{status['sha']}",
            "avatar_url": f"{self.web_url}/avatars/u/{self._user_id(status['creator'])}", "id": status["id"],
            "node_id": f"SC_{status['id']}", "state": status["state"], "description": status["description"],
            "target_url": status["target_url"], "context": status["context"], "created_at": status["created_at"],
            "updated_at": status["updated_at"], "creator": self._user(status["creator"]),
        }

    def _list_pulls(self, repo: RepoState, query: dict[str, str]) -> _Reply:
        """List pull requests: `state` open (default), closed or all; `base` a branch; `sort`
        created (default), updated, popularity or long-running (here: by creation);
        `direction` desc by default. Items are "pull-request-simple": no merged, mergeable,
        comments, commits or line counts (those come with the single pull request only)."""
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise self._invalid("PullRequest", "state", "invalid")
        direction = query.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise self._invalid("PullRequest", "direction", "invalid")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        if "base" in query:
            pulls = [p for p in pulls if p.base_ref == query["base"]]
        pulls.sort(key=lambda p: (p.created_at, p.number), reverse=direction == "desc")
        simple_only = ("merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments",
                       "review_comments", "maintainer_can_modify", "commits", "additions", "deletions",
                       "changed_files")
        items = [{k: v for k, v in self._pull(repo, p).items() if k not in simple_only} for p in pulls]
        return self._page(items, query, f"/repositories/{repo.id}/pulls")

    def _app_login(self, who: str) -> str:
        """The login that authored what a credential creates (an installation acts as its app's bot)."""
        if who.startswith("installation:"):
            app = self._installations[int(who.split(":", 1)[1])]["app"]
            return f"{self._apps[app]['slug']}[bot]"
        return who

    @staticmethod
    def _invalid(resource: str, fieldname: str, code: str, message: str | None = None) -> _Reply:
        error = {"resource": resource, "code": code, "field": fieldname}
        if message:
            error["message"] = message
        return _error(422, "Validation Failed", errors=[error])

    def _body_field(self, body: Any, name: str, resource: str, limit: int) -> str:
        if not isinstance(body, dict) or not isinstance(body.get(name), str):
            raise self._invalid(resource, name, "missing_field")
        if len(body[name]) > limit:
            raise self._invalid(resource, name, "custom", f"{name} is too long (maximum is {limit} characters)")
        return body[name]

    def _injected(self, path: str) -> _Reply | None:
        for i, failure in enumerate(self._failures):
            if failure.path_contains is None or failure.path_contains in path:
                del self._failures[i]
                break
        else:
            return None
        status, after = failure.status, failure.retry_after
        if status == 429:
            return _Reply(429, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                           "before you try again.", "documentation_url": DOCS, "status": "429"},
                          {"Retry-After": str(after if after is not None else 60)})
        if status == 403 and not failure.rate_limited:
            return _error(403, "Resource not accessible by integration")
        if status == 403:
            reset = int(time.time()) + (after if after is not None else 60)
            return _Reply(403, {"message": "API rate limit exceeded for installation.", "documentation_url": DOCS,
                                "status": "403"},
                          {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset),
                           "X-RateLimit-Used": str(RATE_LIMIT)})
        if status == 502:
            return _Reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                          {"Content-Type": "text/html"})
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        reply = _error(status, phrase)
        if after is not None:
            reply.headers["Retry-After"] = str(after)
        return reply

    # -- HTTP -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A response's headers and body go out in two writes: without this, on a kept-alive
            # connection the body waits for the client's delayed ACK (40 ms). The forges do not.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet tests
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with server._lock:
                    record = Recorded(self.command, url.path, "", query, body, "none", "",
                                      self.headers.get("User-Agent", ""))
                    server.requests.append(record)
                    try:
                        record.route = server._route(url.path)
                        auth = server._authenticate(self.headers.get("Authorization", ""))
                        record.auth, record.who = auth[0], auth[1]
                        reply = server._injected(url.path)
                        if reply is None:
                            reply = server._handle(self.command, record.route, query, body, auth)
                    except _Reply as answer:
                        reply = answer
                    record.status = reply.status
                self._send(reply)

            def _send(self, reply: _Reply) -> None:
                if isinstance(reply.body, bytes):
                    payload = reply.body
                elif reply.body is None:
                    payload = b""
                else:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json; charset=utf-8",
                           "X-GitHub-Media-Type": "github.v3; format=json",
                           "X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": str(RATE_LIMIT - 1),
                           "X-RateLimit-Reset": str(int(time.time()) + 3600), "X-RateLimit-Used": "1",
                           "X-RateLimit-Resource": "core", "X-GitHub-Request-Id": secrets.token_hex(8).upper()}
                headers.update(reply.headers)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
