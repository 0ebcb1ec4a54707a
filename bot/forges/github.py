"""GitHub.com and GitHub Enterprise Server behind `base.Forge`, through PyGithub only.

Authentication is a token (a personal access token, or any token the operator provides) or a
GitHub App: the app's id and private key sign a JWT (RS256, PyGithub's `Auth.AppAuth`) that buys
an *installation token* for the installation a webhook names (`GitHubForge.for_installation`),
or, with no installation given, for the installation GitHub reports for the repository. Tokens
are cached per installation until `TOKEN_REFRESH_MARGIN` seconds before they expire; one lock
makes concurrent jobs share one fetch (`GitHubApp`, which also serves Git state stores using
Kratix's `authMethod: githubApp`).

Every API call goes through a PyGithub client with PyGithub's own retries switched off: a
failure surfaces at once as a `ForgeError` whose `retryable` / `retry_after` follow GitHub's
documented rate-limit rules (primary limit: 403/429 with `x-ratelimit-remaining: 0`, wait until
`x-ratelimit-reset`; secondary limit: 403/429 with `retry-after`, or a minute), and the job queue
retries it. Clients are lazy (PyGithub `lazy=True`): a repository or pull request object makes no
request until one of its fields is read, so each method costs exactly the calls it needs.

PyGithub's connection objects are not safe to share between threads (a request's method and URL
are stored on the shared connection before it is sent), so each thread (and each process, after
a fork) gets its own client.

`on_call(forge, code)` is told the HTTP status of every response (`code` 0: no response, a
connection error or timeout), for `promisebot_forge_api_calls_total`. It is fed by urllib3,
which consults its `Retry` object on every response it receives (`_StatusHook`).

Tokens never appear in messages: errors carry GitHub's message with every token known to this
module redacted, and network errors are not chained to the request that carried the token.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args

import github
import requests
from github import Auth, GithubException, GithubIntegration
from github.CommitStatus import CommitStatus
from github.PaginatedList import PaginatedList
from urllib3.util.retry import Retry

from bot.forges.base import (
    REACTIONS,
    Change,
    Comment,
    Credentials,
    ForgeError,
    ForgeName,
    Mergeability,
    MergeMethod,
    Reaction,
    Repo,
    StatusState,
    retry_after_seconds,
)
from bot.redact import redact

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
COMMENT_LIMIT = 65536  # characters in an issue / pull request comment body
STATUS_DESCRIPTION_LIMIT = 140  # characters in a commit status description
TOKEN_REFRESH_MARGIN = 300.0  # seconds before expiry at which an installation token is replaced
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: "wait for at least one minute" when it gives no time
PER_PAGE = 100  # the most GitHub returns per page
ROLES = ("admin", "maintain", "write", "triage", "read", "none")
# user.permissions flags of the permission endpoint, strongest first, and the role each means.
_PERMISSION_FLAGS = (("admin", "admin"), ("maintain", "maintain"), ("push", "write"), ("triage", "triage"),
                     ("pull", "read"))
_STATES = frozenset(get_args(StatusState))
_MERGE_METHODS = frozenset(get_args(MergeMethod))
# Check-run conclusions branch protection counts as passing.
_PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
# mergeable_state (GraphQL's MergeStateStatus) -> (mergeable, reason); "blocked" and "unknown"
# are decided in `mergeability`.
_MERGE_STATES: dict[str, tuple[bool, str]] = {
    "clean": (True, "mergeable"),
    "unstable": (True, "mergeable, though some commit statuses or checks are not successful"),
    "has_hooks": (True, "mergeable (the repository's pre-receive hooks run on merge)"),
    "dirty": (False, "it has merge conflicts with the base branch"),
    "draft": (False, "it is a draft"),
    "behind": (False, "its head is behind the base branch, which branch protection requires it to be "
                      "up to date with"),
}

OnCall = Callable[[str, int], None]


class _StatusHook(Retry):
    """No retries, and `on_status(code)` for every HTTP response. urllib3 asks its Retry object
    `is_retry(method, status)` about each response it receives (requests turns redirects off, so
    that is every response); answering False keeps PyGithub from retrying or sleeping."""

    def __init__(self, *args: Any, on_status: Callable[[int], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_status = on_status

    def new(self, **kw: Any) -> Self:
        kw.setdefault("on_status", self.on_status)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if self.on_status is not None:
            self.on_status(status_code)
        return False


def _no_retries(on_status: Callable[[int], None]) -> _StatusHook:
    return _StatusHook(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False,
                       on_status=on_status)


def normalize_api_url(api_url: str) -> str:
    """`https://api.github.com`, or GitHub Enterprise Server's `https://HOST/api/v3`, without a
    trailing slash. Raises ValueError for anything that is not an http(s) URL."""
    url = (api_url or DEFAULT_API_URL).strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"the GitHub API URL must be an https:// URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("the GitHub API URL must not carry credentials, a query or a fragment")
    return url


def _pem(private_key: str) -> str:
    """A PEM key as given in an environment variable may have its newlines escaped."""
    key = private_key.strip()
    if "\\n" in key and "\n" not in key:
        key = key.replace("\\n", "\n")
    return key + "\n"


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def _rate_limited(status: int, message: str, headers: Any) -> bool:
    if status == 429:
        return True
    if status != 403:
        return False
    return (_header(headers, "x-ratelimit-remaining") == "0" or _header(headers, "retry-after") is not None
            or github.Requester.Requester.isRateLimitError(message))


def _retry_after(status: int, message: str, headers: Any) -> float | None:
    after = retry_after_seconds(_header(headers, "retry-after"))
    if after is not None:
        return after
    if _header(headers, "x-ratelimit-remaining") == "0":
        try:
            reset = float(_header(headers, "x-ratelimit-reset") or "")
        except ValueError:
            reset = None
        if reset is not None:
            return max(0.0, reset - time.time()) + 1.0  # reset is whole seconds: land after it
    if _rate_limited(status, message, headers):
        return SECONDARY_LIMIT_WAIT
    return None


class _Calls:
    """Turns PyGithub / requests failures into ForgeError and reports response codes."""

    def __init__(self, on_call: OnCall | None, secrets: Callable[[], list[str]]) -> None:
        self.on_call = on_call
        self.secrets = secrets

    def status(self, code: int) -> None:
        if self.on_call is None:
            return
        try:
            self.on_call("github", code)
        except Exception:  # a metrics callback never breaks an API call
            log.exception("the on_call callback failed")

    def retry(self) -> _StatusHook:
        return _no_retries(self.status)

    @contextmanager
    def guard(self, what: str, on_unauthorized: Callable[[], None] | None = None) -> Iterator[None]:
        try:
            yield
        except GithubException as exc:
            status = int(exc.status or 0)
            data = exc.data if isinstance(exc.data, dict) else {}
            message = str(data.get("message") or "").strip()
            headers = exc.headers or {}
            if status == 401 and on_unauthorized is not None:
                on_unauthorized()
            text = redact(f"GitHub: {what} failed: HTTP {status}" + (f": {message[:500]}" if message else ""),
                          self.secrets())
            retryable = status >= 500 or _rate_limited(status, message, headers)
            raise ForgeError(text, status=status or None, retryable=retryable,
                             retry_after=_retry_after(status, message, headers)) from exc
        except requests.exceptions.RequestException as exc:
            self.status(0)
            detail = redact(str(exc), self.secrets())[:300]
            raise ForgeError(f"GitHub: {what} failed: no response ({type(exc).__name__}: {detail})",
                             retryable=True) from None


@dataclass(slots=True)
class _Token:
    token: str
    expires_at: float  # epoch seconds


class GitHubApp:
    """A GitHub App: its installation tokens, fetched with a JWT signed by its private key and
    cached per installation until `refresh_margin` seconds before they expire. Thread-safe: one
    lock covers the cache and the fetch, so concurrent callers share one request."""

    def __init__(self, app_id: int | str, private_key: str, *, api_url: str = DEFAULT_API_URL,
                 timeout: int = 15, refresh_margin: float = TOKEN_REFRESH_MARGIN,
                 on_call: OnCall | None = None, verify: bool | str = True) -> None:
        if not str(app_id).strip():
            raise ValueError("the GitHub App id is empty")
        if not private_key or not private_key.strip():
            raise ValueError("the GitHub App private key is empty")
        self.app_id = str(app_id).strip()
        self.api_url = normalize_api_url(api_url)
        self._auth = Auth.AppAuth(self.app_id, _pem(private_key))
        try:
            self._auth.create_jwt()
        except Exception:
            # The key's text must not reach the message, and neither may the parser's (it may quote it).
            raise ValueError("the GitHub App private key is not a usable RSA private key in PEM format") from None
        self._timeout, self._verify, self.refresh_margin = timeout, verify, refresh_margin
        self._lock = threading.Lock()
        self._tokens: dict[int, _Token] = {}
        self._repo_installations: dict[str, int] = {}
        self._integration: GithubIntegration | None = None
        self._slug: str | None = None
        self._pid = 0
        self._calls = _Calls(on_call, self._secret_values)

    def _secret_values(self) -> list[str]:
        return [t.token for t in list(self._tokens.values())]

    def _client(self) -> GithubIntegration:
        # Called with the lock held. A forked child must not share the parent's connections.
        if self._integration is None or self._pid != os.getpid():
            self._integration = GithubIntegration(
                auth=self._auth, base_url=self.api_url, timeout=self._timeout, verify=self._verify,
                retry=self._calls.retry(), seconds_between_requests=None, seconds_between_writes=None,
                user_agent="promisebot",
            )
            self._pid = os.getpid()
        return self._integration

    def installation_token(self, installation_id: int) -> str:
        """A token of the installation, valid for at least `refresh_margin` seconds when it was
        fetched (never older than its expiry minus the margin). Raises ForgeError."""
        installation_id = int(installation_id)
        with self._lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - self.refresh_margin > time.time():
                return cached.token
            with self._calls.guard(f"creating an access token for installation {installation_id}"):
                granted = self._client().get_access_token(installation_id)
                token, expires = granted.token, granted.expires_at
            self._tokens[installation_id] = _Token(token, expires.timestamp() if expires else time.time() + 3600)
            return token

    def installation_for(self, full_name: str) -> int:
        """The id of the installation that covers repository `owner/name` (cached). Raises ForgeError."""
        with self._lock:
            known = self._repo_installations.get(full_name)
            if known is not None:
                return known
            owner, _, name = full_name.partition("/")
            with self._calls.guard(f"finding the app installation of {full_name}"):
                installation_id = int(self._client().get_repo_installation(owner, name).id)
            self._repo_installations[full_name] = installation_id
            return installation_id

    def slug(self) -> str:
        """The App's slug (GET /app with the JWT), cached: its bot user is `<slug>[bot]`."""
        with self._lock:
            if self._slug is None:
                with self._calls.guard(f"reading GitHub App {self.app_id}"):
                    self._slug = str(self._client().get_app().slug or "")
                if not self._slug:
                    raise ForgeError(f"GitHub: GitHub App {self.app_id} has no slug")
            return self._slug

    def forget(self, installation_id: int, token: str) -> None:
        """Drop a cached token GitHub refused (revoked, or the installation was removed)."""
        with self._lock:
            cached = self._tokens.get(int(installation_id))
            if cached is not None and cached.token == token:
                del self._tokens[int(installation_id)]

    def known_tokens(self) -> list[str]:
        """Every token handed out and still cached, for redaction."""
        with self._lock:
            return self._secret_values()


class _Shared:
    """What every installation view of one GitHubForge shares: credentials, settings, clients."""

    def __init__(self, api_url: str, token: str | None, app: GitHubApp | None, timeout: int,
                 on_call: OnCall | None, seconds_between_requests: float, seconds_between_writes: float,
                 verify: bool | str) -> None:
        self.api_url, self.token, self.app = api_url, token, app
        self.timeout, self.verify = timeout, verify
        self.seconds_between_requests, self.seconds_between_writes = seconds_between_requests, seconds_between_writes
        self.calls = _Calls(on_call, self.secrets)
        self.local = threading.local()
        self.login: str | None = None  # whoami, once asked
        self.login_lock = threading.Lock()

    def secrets(self) -> list[str]:
        values = [self.token] if self.token else []
        if self.app is not None:
            values += self.app.known_tokens()
        return values

    def client(self, key: object, token: str) -> github.Github:
        """This thread's client for `token` (one per credential slot `key`, replaced when the
        token changes or the process forked)."""
        clients: dict[object, tuple[str, int, github.Github]] | None = getattr(self.local, "clients", None)
        if clients is None:
            clients = self.local.clients = {}
        held = clients.get(key)
        if held is not None and held[0] == token and held[1] == os.getpid():
            return held[2]
        if held is not None and held[1] == os.getpid():
            held[2].close()
        client = github.Github(
            auth=Auth.Token(token), base_url=self.api_url, timeout=self.timeout, per_page=PER_PAGE,
            verify=self.verify, retry=self.calls.retry(), lazy=True, user_agent="promisebot",
            seconds_between_requests=self.seconds_between_requests or None,
            seconds_between_writes=self.seconds_between_writes or None,
        )
        clients[key] = (token, os.getpid(), client)
        return client


class GitHubForge:
    """`base.Forge` for GitHub.com (`api_url` https://api.github.com) and GitHub Enterprise
    Server (`https://HOST/api/v3`). Give `token`, or `app_id` + `private_key` (a GitHub App; then
    `for_installation(id)` binds the installation a webhook names; without one, each repository's
    installation is looked up). Every method raises ForgeError.

    `seconds_between_writes` spaces this thread's writes (comments, statuses) as GitHub's
    best-practices guide asks of integrations; `seconds_between_requests` spaces all requests.
    """

    name: ForgeName = "github"

    def __init__(self, *, api_url: str = DEFAULT_API_URL, token: str | None = None,
                 app_id: int | str | None = None, private_key: str | None = None,
                 installation_id: int | None = None, on_call: OnCall | None = None, timeout: int = 15,
                 seconds_between_requests: float = 0.0, seconds_between_writes: float = 1.0,
                 verify: bool | str = True) -> None:
        api_url = normalize_api_url(api_url)
        has_app = app_id is not None or private_key is not None
        if bool(token) == has_app:
            raise ValueError("GitHub needs either a token or a GitHub App id and private key (not both)")
        if has_app and (app_id is None or private_key is None):
            raise ValueError("a GitHub App needs both its id and its private key")
        if installation_id is not None and not has_app:
            raise ValueError("an installation id only applies to a GitHub App")
        if seconds_between_requests < 0 or seconds_between_writes < 0:
            raise ValueError("request spacing must not be negative")
        app = (GitHubApp(app_id, private_key, api_url=api_url, timeout=timeout, on_call=on_call, verify=verify)
               if app_id is not None and private_key is not None else None)
        self._shared = _Shared(api_url, token or None, app, timeout, on_call, seconds_between_requests,
                               seconds_between_writes, verify)
        self.installation_id = int(installation_id) if installation_id is not None else None

    @property
    def api_url(self) -> str:
        return self._shared.api_url

    @property
    def app(self) -> GitHubApp | None:
        """The GitHub App (its token cache), or None with token authentication."""
        return self._shared.app

    def for_installation(self, installation_id: int | None) -> GitHubForge:
        """This forge bound to an App installation (a webhook's `installation.id`), sharing the
        token cache and clients. With token authentication, or None, the forge itself."""
        if self._shared.app is None or installation_id is None:
            return self
        view = object.__new__(GitHubForge)
        view._shared = self._shared
        view.installation_id = int(installation_id)
        return view

    # -- credentials ------------------------------------------------------------------------

    def _credential(self, repo: Repo) -> tuple[object, str]:
        """(cache key, token) for calls about `repo`."""
        shared = self._shared
        if shared.app is None:
            assert shared.token is not None
            return "token", shared.token
        installation = self.installation_id
        if installation is None:
            installation = shared.app.installation_for(repo.full_name)
        return installation, shared.app.installation_token(installation)

    @contextmanager
    def _github(self, repo: Repo, what: str) -> Iterator[github.Github]:
        key, token = self._credential(repo)
        app = self._shared.app

        def unauthorized() -> None:
            if app is not None and isinstance(key, int):
                app.forget(key, token)

        with self._shared.calls.guard(f"{what} ({repo.full_name})", unauthorized):
            yield self._shared.client(key, token)

    # -- Forge ------------------------------------------------------------------------------

    def repository(self, full_name: str) -> Repo:
        # Only the name is known yet: it is all the credential lookup (an App's installation) needs.
        with self._github(Repo("github", full_name, "", ""), "reading the repository") as gh:
            found = gh.get_repo(full_name)
            return Repo(forge="github", full_name=found.full_name, clone_url=found.clone_url or "",
                        default_branch=found.default_branch or "")

    def open_changes(self, repo: Repo) -> list[Change]:
        """GET /repos/{owner}/{repo}/pulls?state=open, every page. Only what the list's items
        carry is read (a field they lack would make PyGithub fetch each pull request)."""
        with self._github(repo, "listing the open pull requests") as gh:
            changes = [
                Change(number=int(pr.number), url=pr.html_url or "", state="open", head_sha=pr.head.sha,
                       base_ref=pr.base.ref, base_sha=pr.base.sha, merge_sha="",
                       author=pr.user.login if pr.user is not None else "", draft=bool(pr.draft),
                       title=pr.title or "", **_head_repo(pr, repo))
                for pr in gh.get_repo(repo.full_name).get_pulls(state="open")
            ]
        return sorted(changes, key=lambda c: c.number)

    def statuses(self, repo: Repo, sha: str) -> dict[str, str]:
        """GET /repos/{owner}/{repo}/commits/{ref}/statuses, every page: newest first, so the
        first status of each context is its latest. (The combined status endpoint would give
        the latest per context too, but PyGithub reads only its first page.)"""
        with self._github(repo, f"reading the statuses of {sha[:12]}") as gh:
            url = f"{gh.get_repo(repo.full_name).url}/commits/{urllib.parse.quote(sha, safe='')}/statuses"
            latest: dict[str, str] = {}
            for status in PaginatedList(CommitStatus, gh.requester, url, None):
                latest.setdefault(status.context or "default", status.state)
            return latest

    def fetch_change(self, repo: Repo, number: int) -> Change:
        with self._github(repo, f"reading pull request #{number}") as gh:
            pr = gh.get_repo(repo.full_name).get_pull(int(number))
            merged = bool(pr.merged)
            state: Literal["open", "closed", "merged"] = (
                "merged" if merged else ("open" if pr.state == "open" else "closed"))
            author = pr.user.login if pr.user is not None else ""
            latest: dict[str, str] = {}
            for review in pr.get_reviews():  # oldest first
                # A COMMENTED review leaves an earlier approval standing (as GitHub's UI and
                # branch protection count it); a dismissed approval reads DISMISSED.
                if review.user is not None and review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                    latest[review.user.login] = review.state
            return Change(
                number=int(pr.number),
                url=pr.html_url or "",
                state=state,
                head_sha=pr.head.sha,
                base_ref=pr.base.ref,
                base_sha=pr.base.sha,
                # For an open pull request GitHub reports its test merge commit here; only a
                # merged one's is the merge that landed.
                merge_sha=(pr.merge_commit_sha or "") if merged else "",
                author=author,
                approvers=tuple(sorted(user for user, s in latest.items() if s == "APPROVED")),
                draft=bool(pr.draft),
                title=pr.title or "",
                **_head_repo(pr, repo),
            )

    def head_ref(self, number: int) -> str:
        return f"refs/pull/{int(number)}/head"

    def comments(self, repo: Repo, number: int) -> list[Comment]:
        with self._github(repo, f"listing the comments of #{number}") as gh:
            issue = gh.get_repo(repo.full_name).get_issue(int(number))
            return [Comment(id=int(c.id), body=c.body or "", author=c.user.login if c.user is not None else "")
                    for c in issue.get_comments()]

    def create_comment(self, repo: Repo, number: int, body: str) -> Comment:
        self._check_body(body)
        with self._github(repo, f"commenting on #{number}") as gh:
            made = gh.get_repo(repo.full_name).get_issue(int(number)).create_comment(body)
            return Comment(id=int(made.id), body=made.body or "", author=made.user.login if made.user else "")

    def edit_comment(self, repo: Repo, number: int, comment_id: int, body: str) -> None:
        self._check_body(body)
        with self._github(repo, f"editing comment {comment_id} on #{number}") as gh:
            gh.get_repo(repo.full_name).get_issue(int(number)).get_comment(int(comment_id)).edit(body)

    def set_status(self, repo: Repo, sha: str, context: str, state: StatusState, description: str,
                   target_url: str = "", ref: str = "") -> None:
        # `ref` is not needed: GitHub sets a status on any commit of the repository network.
        if state not in _STATES:
            raise ValueError(f"unknown commit status state {state!r}")
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        with self._github(repo, f"setting status {context} on {sha[:12]}") as gh:
            commit = gh.get_repo(repo.full_name).get_commit(sha)
            if target_url:
                commit.create_status(state=state, target_url=target_url, description=description, context=context)
            else:
                commit.create_status(state=state, description=description, context=context)

    def permission(self, repo: Repo, user: str) -> str:
        try:
            with self._github(repo, f"reading the permission of {user}") as gh:
                url = f"{gh.get_repo(repo.full_name).url}/collaborators/{urllib.parse.quote(user, safe='')}/permission"
                _, data = gh.requester.requestJsonAndCheck("GET", url)
        except ForgeError as exc:
            if exc.status == 404:  # no such user (or not visible to us): no rights
                return "none"
            raise
        return _role(data if isinstance(data, dict) else {})

    def clone_credentials(self, repo: Repo) -> Credentials | None:
        _, token = self._credential(repo)
        return Credentials("x-access-token", token)

    def comment_limit(self) -> int:
        return COMMENT_LIMIT

    def react(self, repo: Repo, number: int, comment_id: int, reaction: Reaction = "eyes") -> None:
        """POST /repos/{owner}/{repo}/issues/comments/{id}/reactions: GitHub answers 201 for a new
        reaction and 200 for one the user already left, so reacting twice is fine."""
        if reaction not in REACTIONS:
            raise ValueError(f"unknown reaction {reaction!r}; one of {', '.join(REACTIONS)}")
        with self._github(repo, f"reacting {reaction} to comment {comment_id} on #{number}") as gh:
            gh.get_repo(repo.full_name).get_issue(int(number)).get_comment(int(comment_id)).create_reaction(reaction)

    def whoami(self) -> str:
        """A token: GET /user's login. A GitHub App: `<slug>[bot]`, the slug from GET /app with the
        App's JWT (an installation token cannot read /user). Once per forge (and its installation
        views), then cached."""
        shared = self._shared
        with shared.login_lock:
            if shared.login is None:
                if shared.app is not None:
                    shared.login = f"{shared.app.slug()}[bot]"
                else:
                    assert shared.token is not None
                    with shared.calls.guard("reading the authenticated user"):
                        shared.login = str(shared.client("token", shared.token).get_user().login)
            return shared.login

    def member_of(self, repo: Repo, user: str, team: str) -> bool:
        """GET /orgs/{org}/teams/{team_slug}/memberships/{username}: state "active" is a member
        ("pending": invited, not yet). GitHub answers 404 both to a non-member and when the team
        does not exist (or the credentials cannot see it): then GET /orgs/{org}/teams/{team_slug}
        tells them apart. A GitHub App needs the organization permission Members (read)."""
        org, _, slug = team.partition("/")
        if not org or not slug or "/" in slug:
            raise ValueError(f"a GitHub team is named org/team-slug, got {team!r}")
        try:
            with self._github(repo, f"reading {user}'s membership of team {team}") as gh:
                membership = gh.get_organization(org).get_team_by_slug(slug).get_team_membership(user)
                return membership.state == "active"
        except ForgeError as exc:
            if exc.status != 404:
                raise
        try:
            with self._github(repo, f"reading team {team}") as gh:
                gh.get_organization(org).get_team_by_slug(slug).id  # noqa: B018 - the lazy team's fetch
        except ForgeError as exc:
            if exc.status == 404:
                raise ForgeError(f"GitHub: team {team} does not exist, or the credentials cannot see it "
                                 "(a GitHub App needs the organization permission Members: read)",
                                 status=404) from None
            raise
        return False

    def merge(self, repo: Repo, number: int, *, method: MergeMethod, sha: str) -> str:
        """PUT /repos/{owner}/{repo}/pulls/{n}/merge with `sha` and `merge_method`: GitHub merges
        only if the head is still `sha` (409 "Head branch was modified" otherwise) and the pull
        request may be merged (405 "Pull Request is not mergeable", or what branch protection
        requires); either is a ForgeError carrying GitHub's message, not retryable. Returns the
        sha GitHub reports: the merge commit, the squashed commit, or the last rebased commit."""
        if method not in _MERGE_METHODS:
            raise ValueError(f"unknown merge method {method!r}; one of {', '.join(sorted(_MERGE_METHODS))}")
        if not sha:
            raise ValueError("merge needs the head sha the pull request must still have")
        what = f"merging pull request #{number} at {sha[:12]} ({method})"
        with self._github(repo, what) as gh:
            result = gh.get_repo(repo.full_name).get_pull(int(number)).merge(merge_method=method, sha=sha)
            merged, landed, message = bool(result.merged), str(result.sha or ""), str(result.message or "")
        if not merged or not landed:
            raise ForgeError(f"GitHub: {what} ({repo.full_name}) did not merge" + (f": {message}" if message else ""))
        return landed

    def mergeability(self, repo: Repo, number: int) -> Mergeability:
        """GET /repos/{owner}/{repo}/pulls/{n}: `mergeable` (null while GitHub computes it) and
        `mergeable_state`: clean, unstable and has_hooks are mergeable; dirty (conflicts), draft,
        behind (branch protection wants it up to date) and blocked are not. For "blocked" the
        head's commit statuses and check runs that are not successful are listed in `blocked_by`
        (check runs that concluded neutral or skipped pass, as branch protection counts them).
        Branch protection may also block for reviews, which the REST API does not report without
        admin rights: an empty `blocked_by` then."""
        with self._github(repo, f"reading the mergeability of #{number}") as gh:
            pr = gh.get_repo(repo.full_name).get_pull(int(number))
            merged, state, draft = bool(pr.merged), pr.state, bool(pr.draft)
            mergeable, merge_state, head = pr.mergeable, str(pr.mergeable_state or ""), pr.head.sha
        if merged:
            return Mergeability(False, "it is already merged")
        if state != "open":
            return Mergeability(False, "it is closed")
        if draft or merge_state == "draft":
            return Mergeability(False, _MERGE_STATES["draft"][1])
        if mergeable is None or merge_state in ("", "unknown"):
            return Mergeability(None, "GitHub is still computing whether it can be merged; ask again shortly")
        if merge_state == "blocked":
            blocked = self._not_passing(repo, head)
            why = ("statuses or checks not successful: " + ", ".join(blocked) if blocked
                   else "required reviews, or required statuses not reported yet")
            return Mergeability(False, f"blocked by branch protection ({why})", blocked)
        if merge_state in _MERGE_STATES:
            ok, why = _MERGE_STATES[merge_state]
            if ok and not mergeable:  # GitHub's two fields disagree: its merge would fail
                return Mergeability(False, _MERGE_STATES["dirty"][1])
            return Mergeability(ok, why)
        return Mergeability(bool(mergeable), f"GitHub reports mergeable_state {merge_state!r}")

    def _not_passing(self, repo: Repo, sha: str) -> tuple[str, ...]:
        """The commit statuses (latest per context) and check runs (latest per name) of `sha`
        that are not successful, by name."""
        names = {context for context, state in self.statuses(repo, sha).items() if state != "success"}
        with self._github(repo, f"reading the check runs of {sha[:12]}") as gh:
            for run in gh.get_repo(repo.full_name).get_commit(sha).get_check_runs():
                if run.status != "completed" or run.conclusion not in _PASSING_CONCLUSIONS:
                    names.add(run.name)
        return tuple(sorted(names))

    @staticmethod
    def _check_body(body: str) -> None:
        if len(body) > COMMENT_LIMIT:
            raise ForgeError(f"GitHub: a comment of {len(body)} characters is over GitHub's limit of {COMMENT_LIMIT}; "
                             "split it first")


def _head_repo(pr: Any, repo: Repo) -> dict[str, Any]:
    """`head_repo` and `from_fork` of a pull request: its head repository's full name ("" when
    that repository was deleted, which only a fork's can be) compared with the base's."""
    head = pr.head.repo
    base = pr.base.repo
    head_name = str(head.full_name or "") if head is not None else ""
    base_name = str(base.full_name or "") if base is not None else repo.full_name
    return {"head_repo": head_name, "from_fork": not head_name or head_name.lower() != base_name.lower()}


def _role(data: dict[str, Any]) -> str:
    """The role in a "get repository permissions for a user" answer: `role_name` when it is one of
    the five base roles; for a custom role, the strongest base role its `user.permissions` grant;
    else the legacy `permission` (admin / write / read / none)."""
    role = data.get("role_name")
    if role in ROLES:
        return str(role)
    user = data.get("user")
    flags = user.get("permissions") if isinstance(user, dict) else None
    flags = flags if isinstance(flags, dict) else {}
    for flag, name in _PERMISSION_FLAGS:
        if flags.get(flag):
            return name
    legacy = data.get("permission")
    return str(legacy) if legacy in ("admin", "write", "read") else "none"
