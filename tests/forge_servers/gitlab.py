"""A stand-in GitLab REST API v4 server for tests, on 127.0.0.1 (a free port), in a thread.

It serves exactly what python-gitlab calls for `bot.forges.gitlab.GitLabForge`, with the
response shapes, status codes and headers of GitLab's published REST API
(docs.gitlab.com/api: projects, merge_requests, merge_request_approvals, notes, commits
"Set the pipeline status of a commit", members, users, rest "Pagination"):

    GET  /api/v4/projects/:id                                   (id or URL-encoded full path)
    GET  /api/v4/projects/:id/merge_requests                    (paginated; state, target_branch,
                                                                 source_branch, order_by, sort)
    GET  /api/v4/projects/:id/merge_requests/:iid
    GET  /api/v4/projects/:id/merge_requests/:iid/approvals
    GET  /api/v4/projects/:id/merge_requests/:iid/notes         (paginated; sort, order_by)
    POST /api/v4/projects/:id/merge_requests/:iid/notes
    GET  /api/v4/projects/:id/merge_requests/:iid/notes/:note_id
    PUT  /api/v4/projects/:id/merge_requests/:iid/notes/:note_id
    POST /api/v4/projects/:id/statuses/:sha
    GET  /api/v4/projects/:id/repository/commits/:sha/statuses  (paginated; ref, name, all)
    GET  /api/v4/projects/:id/members/all/:user_id              (inherited from ancestor groups)
    POST /api/v4/projects/:id/merge_requests/:iid/notes/:note_id/award_emoji
    PUT  /api/v4/projects/:id/merge_requests/:iid/merge          (sha, squash)
    GET  /api/v4/groups/:id/members/all/:user_id                (the URL-encoded full path;
                                                                 inherited from ancestor groups)
    GET  /api/v4/users?username=...                             (paginated)
    GET  /api/v4/user                                           (the token's user)

Behaviour kept from GitLab: every call needs the `PRIVATE-TOKEN` header (401 otherwise); the
token's user authors the notes and statuses it creates and only it may edit its notes (403);
lists are paginated (`page`, `per_page` default 20, capped at `max_per_page`) with `X-Page`,
`X-Per-Page`, `X-Total`, `X-Total-Pages`, `X-Next-Page`, `X-Prev-Page` and `Link` headers;
notes list newest first unless `sort=asc`; a status on a commit the project does not have is
404, and so is one without `ref` on a commit that is on no branch of the project (the head of
an MR from a fork, `add_merge_request(from_fork=True)`: 404 "References for commit"); a second
`pending` on a pending or running status of the same name and ref is 400 ("Cannot transition
status via :enqueue from :pending"), a finished one is followed by a new status (the old one
then counts as retried: commit status lists leave it out unless `all=true`); a note over
1,000,000 characters is 400. An award emoji the user already gave on a note is refused with
404 "Award Emoji ["Name has already been taken"] Not Found" (the API's `not_found!` around the
model's uniqueness error). A merge (`lib/api/merge_requests.rb`) is 405 "Method Not Allowed"
when the MR is not open or not mergeable for another reason than conflicts, 422 "Branch cannot be
merged" for conflicts, 409 "SHA does not match HEAD of source branch: <sha>" when `sha` is not
its head; no Git happens: the merge is recorded with the commit `set_merge_result` gave (or a
new one). `detailed_merge_status` is the MR's field (set it to any of GitLab's values);
`GitLabServer(detailed_merge_status=False)` answers as GitLab before 15.6 (`merge_status` only).

Tests set up state (`add_user`, `add_project`, `add_group`, `add_member`, `add_merge_request`,
`add_note`, `approve`, `add_status` (a CI job's or another integration's status),
`set_merge_result`), read it back from the same objects (`Note.awards`, `MergeRequest.state`, ...), and inspect `requests` (every request, in
order, with its response status). `fail_next(n, status, retry_after=...)` makes the next `n`
matching requests fail with 500 (JSON), 502/503/504 (an HTML proxy page) or 429 ("Retry
later", with `Retry-After` and the `RateLimit-*` headers).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

DEFAULT_TOKEN = "glpat-standin-0123456789abcdef"
NOTE_LIMIT = 1_000_000
_EPOCH = dt.datetime(2024, 5, 1, 9, 0, 0, tzinfo=dt.UTC)
_STATUS_STATES = ("pending", "running", "success", "failed", "canceled", "skipped")
_EMOJI_NAME = re.compile(r"[a-z0-9_+-]+")
# detailed_merge_status -> the deprecated merge_status GitLab reports along with it (Git's view
# only: an MR blocked by approvals or a pipeline still "can_be_merged").
_MERGE_STATUS = {"mergeable": "can_be_merged", "checking": "checking", "unchecked": "unchecked",
                 "preparing": "unchecked", "approvals_syncing": "unchecked", "not_open": "cannot_be_merged",
                 "conflict": "cannot_be_merged"}


@dataclass
class User:
    id: int
    username: str
    name: str
    state: str = "active"
    bot: bool = False


@dataclass
class Award:
    id: int
    name: str
    user: User
    created_at: str


@dataclass
class Membership:
    user: User
    access_level: int
    created_at: str
    expires_at: str | None = None
    membership_state: str = "active"


@dataclass
class Note:
    id: int
    body: str
    author: User
    created_at: str
    updated_at: str
    system: bool = False
    awards: list[Award] = field(default_factory=list)


@dataclass
class MergeRequest:
    id: int
    iid: int
    project_id: int
    title: str
    author: User
    source_branch: str
    target_branch: str
    sha: str
    base_sha: str
    start_sha: str
    created_at: str
    state: str = "opened"  # opened, closed, locked, merged
    draft: bool = False
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None
    description: str = ""
    approved_by: list[User] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    source_project_id: int | None = None  # None: the project itself; else a fork's
    detailed_merge_status: str = "mergeable"
    # What PUT .../merge does next (`set_merge_result`).
    merge_result: dict[str, Any] = field(default_factory=dict)


@dataclass
class CommitStatus:
    id: int
    sha: str
    ref: str
    name: str
    status: str
    description: str | None
    target_url: str | None
    author: User
    created_at: str
    pipeline_id: int
    retried: bool = False
    allow_failure: bool = False


@dataclass
class Project:
    id: int
    path_with_namespace: str
    default_branch: str
    created_at: str
    members: dict[int, Membership] = field(default_factory=dict)
    merge_requests: dict[int, MergeRequest] = field(default_factory=dict)
    statuses: list[CommitStatus] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)  # sha -> a branch containing it ("": none)

    @property
    def name(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0] if "/" in self.path_with_namespace else ""


@dataclass
class Recorded:
    """One request as received, and the status it was answered with."""

    method: str
    path: str  # decoded segments joined by "/", e.g. /api/v4/projects/group/sub/p/merge_requests/1
    raw_path: str  # as sent, e.g. /api/v4/projects/group%2Fsub%2Fp/merge_requests/1
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, a form dict, or None
    status: int = 0


@dataclass
class _Failure:
    remaining: int
    status: int
    retry_after: str | None
    method: str | None
    path_contains: str | None


class _Reply(Exception):
    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}


def _message(status: int, text: str) -> _Reply:
    return _Reply(status, {"message": f"{status} {text}"})


class GitLabServer:
    """Use as a context manager: `with GitLabServer() as gl: ... gl.url ...`."""

    def __init__(self, token: str = DEFAULT_TOKEN, bot_username: str = "promisebot", max_per_page: int = 100,
                 approvals_api: bool = True, detailed_merge_status: bool = True) -> None:
        self.token = token
        self.max_per_page = max_per_page
        self.approvals_api = approvals_api  # False: /approvals answers 404 (no approvals API)
        self.detailed_merge_status = detailed_merge_status  # False: GitLab before 15.6 (merge_status only)
        self.requests: list[Recorded] = []
        self.errors: list[Exception] = []  # exceptions raised while handling a request (stand-in bugs)
        self.users: dict[int, User] = {}
        self.projects: dict[int, Project] = {}
        self.groups: dict[str, dict[int, Membership]] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._ids = 0
        self._clock = 0
        self.bot = self.add_user(bot_username, "promisebot bot")
        self.bot.bot = True  # a project or group access token's user is a bot user
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> GitLabServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A response's headers and body go out in two writes: without this, on a kept-alive
            # connection the body waits for the client's delayed ACK (40 ms). The forges do not.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet tests
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def do_PUT(self) -> None:
                server._handle(self)

            def do_DELETE(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="gitlab-standin", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- state set-up ---------------------------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _now(self) -> str:
        """A clock that moves one second per event, so orderings are strict and reproducible."""
        with self._lock:
            self._clock += 1
            return _iso(_EPOCH + dt.timedelta(seconds=self._clock))

    def add_user(self, username: str, name: str = "", state: str = "active") -> User:
        user = User(self._next_id(), username, name or username.title(), state)
        with self._lock:
            self.users[user.id] = user
        return user

    def user(self, username: str) -> User:
        found = [u for u in self.users.values() if u.username.lower() == username.lower()]
        return found[0] if found else self.add_user(username)

    def add_project(self, path_with_namespace: str, default_branch: str = "main") -> Project:
        project = Project(self._next_id(), path_with_namespace, default_branch, self._now())
        with self._lock:
            self.projects[project.id] = project
        return project

    def add_group(self, path: str) -> None:
        """A group (full path) with no members yet; `add_member` on a path that is no project
        makes the group too."""
        with self._lock:
            self.groups.setdefault(path, {})

    def add_member(self, path: str, username: str, access_level: int, *, expires_at: str | None = None,
                   membership_state: str = "active") -> None:
        """Membership of a project (its full path) or of a group (any other path)."""
        user = self.user(username)
        member = Membership(user, access_level, self._now(), expires_at, membership_state)
        with self._lock:
            project = self._find_project(path)
            if project is not None:
                project.members[user.id] = member
            else:
                self.groups.setdefault(path, {})[user.id] = member

    def add_merge_request(self, project: Project, *, sha: str, base_sha: str, author: str = "dev",
                          title: str = "Add a request", iid: int | None = None, source_branch: str = "feature",
                          target_branch: str | None = None, state: str = "opened", draft: bool = False,
                          merge_commit_sha: str | None = None, squash_commit_sha: str | None = None,
                          from_fork: bool = False, source_project: Project | None = None) -> MergeRequest:
        """`from_fork`: the source branch is a fork's, so the head is on no branch of `project`
        (only refs/merge-requests/<iid>/head holds it); the fork is `source_project` when given,
        else a project this server does not know (GET /projects/:id of it is 404)."""
        from_fork = from_fork or source_project is not None
        with self._lock:
            number = iid if iid is not None else len(project.merge_requests) + 1
            source_id = None
            if from_fork:
                source_id = source_project.id if source_project is not None else self._next_id()
            mr = MergeRequest(self._next_id(), number, project.id, title, self.user(author), source_branch,
                              target_branch or project.default_branch, sha, base_sha, base_sha, self._now(),
                              state, draft, merge_commit_sha, squash_commit_sha,
                              source_project_id=source_id)
            project.merge_requests[number] = mr
            project.commits.setdefault(sha, "" if from_fork else source_branch)
            project.commits.setdefault(base_sha, mr.target_branch)
            for merged in (merge_commit_sha, squash_commit_sha):
                if merged:
                    project.commits.setdefault(merged, mr.target_branch)
        return mr

    def add_note(self, mr: MergeRequest, body: str, author: str = "dev", system: bool = False) -> Note:
        now = self._now()
        note = Note(self._next_id(), body, self.user(author), now, now, system)
        with self._lock:
            mr.notes.append(note)
        return note

    def approve(self, mr: MergeRequest, username: str) -> None:
        with self._lock:
            mr.approved_by.append(self.user(username))

    def add_status(self, project: Project, sha: str, name: str, status: str, *, author: str = "ci",
                   allow_failure: bool = False, ref: str | None = None) -> CommitStatus:
        """A commit status (or CI job) set by someone else than the bot: `status` one of
        pending, running, success, failed, canceled, skipped."""
        assert status in _STATUS_STATES, status
        with self._lock:
            pipeline = max((s.pipeline_id for s in project.statuses if s.sha == sha), default=0) or self._next_id()
            made = CommitStatus(self._next_id(), sha, ref or project.commits.get(sha) or project.default_branch,
                                name, status, None, None, self.user(author), self._now(), pipeline,
                                allow_failure=allow_failure)
            project.statuses.append(made)
            project.commits.setdefault(sha, made.ref)
            return made

    def set_merge_result(self, mr: MergeRequest, *, merge_commit_sha: str | None = "",
                         squash_commit_sha: str | None = "", status: int | None = None, message: str = "") -> None:
        """What the next merge of `mr` does: land with `merge_commit_sha` (None: a fast-forward,
        no merge commit; "": a new sha) and, when squashed, `squash_commit_sha` (""/None: a new
        sha), or be refused with `status` and `message`."""
        with self._lock:
            mr.merge_result = ({"status": status, "message": message} if status is not None else
                               {"merge_commit_sha": merge_commit_sha, "squash_commit_sha": squash_commit_sha})

    def fail_next(self, count: int, status: int, *, retry_after: float | str | None = None,
                  method: str | None = None, path_contains: str | None = None) -> None:
        """The next `count` requests (of `method`, whose decoded path contains `path_contains`)
        are answered `status`. A 429 carries `Retry-After` (default 60) whatever is given."""
        if status == 429 and retry_after is None:
            retry_after = 60
        with self._lock:
            self._failures.append(_Failure(count, status, None if retry_after is None else str(retry_after),
                                           method.upper() if method else None, path_contains))

    def calls(self, method: str | None = None, path_contains: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper()) and path_contains in r.path]

    def statuses(self, project: Project, sha: str) -> list[CommitStatus]:
        with self._lock:
            return [s for s in project.statuses if s.sha == sha]

    # -- request handling -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw_path, _, raw_query = handler.path.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        body = _parse_body(raw_body, handler.headers.get("Content-Type", ""))
        segments = [unquote(s) for s in raw_path.split("/")]
        record = Recorded(handler.command, "/".join(segments), raw_path, parse_qs(raw_query, keep_blank_values=True),
                          {k: v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(record)
        try:
            failure = self._failure(record)
            if failure is not None:
                raise _failure_reply(failure)
            if handler.headers.get("PRIVATE-TOKEN") != self.token:
                raise _message(401, "Unauthorized")
            params: dict[str, Any] = {k: v[-1] for k, v in record.query.items()}
            if isinstance(body, dict):
                params.update(body)
            host = handler.headers.get("Host") or self.url.removeprefix("http://")
            with self._lock:
                status, payload, headers = self._route(handler.command, segments, params, raw_path, host)
        except _Reply as reply:
            status, payload, headers = reply.status, reply.payload, reply.headers
        except Exception as e:  # a bug of the stand-in: answered like GitLab would, kept for the test
            self.errors.append(e)
            status, payload, headers = 500, {"message": "500 Internal Server Error"}, {}
        record.status = status
        if isinstance(payload, bytes):
            data, content_type = payload, headers.pop("Content-Type", "text/plain")
        else:
            data, content_type = json.dumps(payload).encode(), "application/json"
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _failure(self, record: Recorded) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining <= 0:
                    continue
                if failure.method is not None and failure.method != record.method:
                    continue
                if failure.path_contains is not None and failure.path_contains not in record.path:
                    continue
                failure.remaining -= 1
                return failure
        return None

    def _route(self, method: str, segments: list[str], params: dict[str, Any], raw_path: str,
               host: str) -> tuple[int, Any, dict[str, str]]:
        if segments[:3] != ["", "api", "v4"]:
            raise _Reply(404, {"error": "404 Not Found"})
        parts = segments[3:]
        if parts == ["users"] and method == "GET":
            users = sorted(self.users.values(), key=lambda u: u.id)
            if "username" in params:
                users = [u for u in users if u.username.lower() == str(params["username"]).lower()]
            page, headers = self._paginate(users, params, raw_path, host)
            return 200, [_user(u, self.url) for u in page], headers
        if parts == ["user"] and method == "GET":
            return 200, self._current_user(self.bot), {}
        if len(parts) == 5 and parts[0] == "groups" and parts[2:4] == ["members", "all"] and method == "GET":
            return 200, self._group_member(parts[1], parts[4]), {}
        if len(parts) < 2 or parts[0] != "projects":
            raise _Reply(404, {"error": "404 Not Found"})
        project = self._find_project(parts[1])
        if project is None:
            raise _message(404, "Project Not Found")
        rest = parts[2:]
        if rest == [] and method == "GET":
            return 200, self._project(project, host), {}
        if len(rest) == 2 and rest[0] == "statuses" and method == "POST":
            return 201, self._set_status(project, rest[1], params), {}
        if len(rest) == 4 and rest[:2] == ["repository", "commits"] and rest[3] == "statuses" and method == "GET":
            if rest[2] not in project.commits:
                raise _message(404, "Commit Not Found")
            found = [st for st in project.statuses if st.sha == rest[2]
                     and (str(params.get("all", "false")).lower() == "true" or not st.retried)
                     and ("ref" not in params or st.ref == params["ref"])
                     and ("name" not in params or st.name == params["name"])]
            page, headers = self._paginate(sorted(found, key=lambda st: st.id), params, raw_path, host)
            return 200, [self._status(st) for st in page], headers
        if rest == ["merge_requests"] and method == "GET":
            return self._list_merge_requests(project, params, raw_path, host)
        if len(rest) == 3 and rest[:2] == ["members", "all"] and method == "GET":
            return 200, self._member(project, rest[2]), {}
        if len(rest) >= 2 and rest[0] == "merge_requests":
            mr = project.merge_requests.get(_int(rest[1]))
            if mr is None:
                raise _message(404, "Not found")
            return self._merge_request_route(method, project, mr, rest[2:], params, raw_path, host)
        raise _Reply(404, {"error": "404 Not Found"})

    def _merge_request_route(self, method: str, project: Project, mr: MergeRequest, rest: list[str],
                             params: dict[str, Any], raw_path: str,
                             host: str) -> tuple[int, Any, dict[str, str]]:
        if rest == [] and method == "GET":
            return 200, self._mr(project, mr, host), {}
        if rest == ["approvals"] and method == "GET":
            if not self.approvals_api:
                raise _Reply(404, {"error": "404 Not Found"})
            return 200, self._approvals(project, mr, host), {}
        if rest == ["notes"] and method == "GET":
            notes = sorted(mr.notes, key=lambda n: (n.updated_at if params.get("order_by") == "updated_at"
                                                    else n.created_at, n.id),
                           reverse=params.get("sort", "desc") != "asc")
            page, headers = self._paginate(notes, params, raw_path, host)
            return 200, [self._note(project, mr, n, host) for n in page], headers
        if rest == ["notes"] and method == "POST":
            text = params.get("body")
            if not isinstance(text, str) or text == "":
                raise _Reply(400, {"error": "body is missing"})
            _check_note_length(text)
            now = self._now()
            note = Note(self._next_id(), text, self.bot, now, now)
            mr.notes.append(note)
            return 201, self._note(project, mr, note, host), {}
        if rest == ["merge"] and method == "PUT":
            return 200, self._merge(project, mr, params, host), {}
        if len(rest) == 3 and rest[0] == "notes" and rest[2] == "award_emoji" and method == "POST":
            found = next((n for n in mr.notes if n.id == _int(rest[1])), None)
            if found is None:
                raise _message(404, "Note Not Found")
            return 201, self._award(found, params), {}
        if len(rest) == 2 and rest[0] == "notes":
            found = next((n for n in mr.notes if n.id == _int(rest[1])), None)
            if found is None:
                raise _message(404, "Note Not Found")
            if method == "GET":
                return 200, self._note(project, mr, found, host), {}
            if method == "PUT":
                if found.author.id != self.bot.id or found.system:
                    raise _message(403, "Forbidden")
                text = params.get("body")
                if not isinstance(text, str) or text == "":
                    raise _Reply(400, {"error": "body is missing"})
                _check_note_length(text)
                found.body, found.updated_at = text, self._now()
                return 200, self._note(project, mr, found, host), {}
        raise _Reply(405, {"message": "405 Method Not Allowed"})

    def _award(self, note: Note, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        if not isinstance(name, str) or not name:
            raise _Reply(400, {"error": "name is missing"})
        if not _EMOJI_NAME.fullmatch(name):
            raise _message(404, 'Award Emoji ["Name is not a valid emoji name"]')
        if any(a.name == name and a.user.id == self.bot.id for a in note.awards):
            raise _message(404, 'Award Emoji ["Name has already been taken"]')
        award = Award(self._next_id(), name, self.bot, self._now())
        note.awards.append(award)
        return {"id": award.id, "name": award.name, "user": _user(award.user, self.url),
                "created_at": award.created_at, "updated_at": award.created_at, "awardable_id": note.id,
                "awardable_type": "Note"}

    def _merge(self, project: Project, mr: MergeRequest, params: dict[str, Any], host: str) -> dict[str, Any]:
        if mr.state != "opened":
            raise _message(405, "Method Not Allowed")
        forced = mr.merge_result
        if forced.get("status") is not None:
            mr.merge_result = {}
            raise _Reply(int(forced["status"]), {"message": forced.get("message") or f"{forced['status']} Error"})
        # Not mergeable for a reason other than Git's (a draft, approvals, a pipeline...): 405;
        # only then are conflicts checked: 422.
        if mr.draft or mr.detailed_merge_status not in ("mergeable", "conflict"):
            raise _message(405, "Method Not Allowed")
        if mr.detailed_merge_status == "conflict":
            raise _Reply(422, {"message": "Branch cannot be merged"})
        sha = params.get("sha")
        if sha is not None and sha != mr.sha:
            raise _Reply(409, {"message": f"SHA does not match HEAD of source branch: {mr.sha}"})
        squash = str(params.get("squash", "false")).lower() == "true"
        merge_commit = forced.get("merge_commit_sha", "")
        squash_commit = forced.get("squash_commit_sha", "")
        mr.merge_commit_sha = (f"{self._next_id():040x}" if merge_commit == "" else merge_commit)
        mr.squash_commit_sha = (squash_commit or f"{self._next_id():040x}") if squash else None
        mr.state, mr.merge_result = "merged", {}
        for landed in (mr.merge_commit_sha, mr.squash_commit_sha):
            if landed:
                project.commits.setdefault(landed, mr.target_branch)
        return self._mr(project, mr, host)

    def _current_user(self, user: User) -> dict[str, Any]:
        return {**_user(user, self.url), "created_at": _iso(_EPOCH), "bio": "", "location": "", "public_email": None,
                "skype": "", "linkedin": "", "twitter": "", "discord": "", "website_url": "", "organization": "",
                "job_title": "", "pronouns": None, "bot": user.bot, "work_information": None, "followers": 0,
                "following": 0, "is_followed": False, "local_time": None, "last_sign_in_at": None,
                "confirmed_at": _iso(_EPOCH), "last_activity_on": None, "email": f"{user.username}@example.com",
                "theme_id": 1, "color_scheme_id": 1, "projects_limit": 100000, "current_sign_in_at": None,
                "identities": [], "can_create_group": True, "can_create_project": True,
                "two_factor_enabled": False, "external": False, "private_profile": False, "commit_email": None}

    def _group_member(self, path: str, user_id: str) -> dict[str, Any]:
        known = set(self.groups)
        for project in self.projects.values():
            parts = project.namespace.split("/") if project.namespace else []
            known.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        match = next((g for g in known if g.lower() == path.lower()), None)
        if match is None:
            raise _message(404, "Group Not Found")
        parts = match.split("/")
        uid = _int(user_id)
        found = [m for m in (self.groups.get("/".join(parts[:i]), {}).get(uid) for i in range(1, len(parts) + 1))
                 if m is not None]
        if not found:
            raise _message(404, "Not found")
        return self._membership(max(found, key=lambda m: m.access_level))

    def _set_status(self, project: Project, sha: str, params: dict[str, Any]) -> dict[str, Any]:
        state = params.get("state")
        if not state:
            raise _Reply(400, {"error": "state is missing"})
        if state not in _STATUS_STATES:
            raise _Reply(400, {"error": "state does not have a valid value"})
        if sha not in project.commits:
            raise _message(404, "Commit Not Found")
        ref = str(params.get("ref") or project.commits[sha])
        if not ref:
            raise _message(404, "References for commit Not Found")
        name = str(params.get("name") or params.get("context") or "default")
        target_url = params.get("target_url")
        if target_url is not None and (not str(target_url).startswith(("http://", "https://"))
                                       or len(str(target_url)) > 255):
            raise _Reply(400, {"message": {"target_url": ["is blocked: Only allowed schemes are http, https"]}})
        open_ = [s for s in project.statuses if s.sha == sha and s.ref == ref and s.name == name
                 and s.author.id == self.bot.id and s.status in ("pending", "running")]
        current = open_[-1] if open_ else None
        if current is not None and state == "pending":
            raise _Reply(400, {"message": f"Cannot transition status via :enqueue from :{current.status} "
                                          f"(Reason(s): Status cannot transition via \"enqueue\")"})
        if current is None:
            for older in project.statuses:
                if older.sha == sha and older.ref == ref and older.name == name:
                    older.retried = True
            pipeline = max((s.pipeline_id for s in project.statuses if s.sha == sha), default=0) or self._next_id()
            current = CommitStatus(self._next_id(), sha, ref, name, "created", None, None, self.bot, self._now(),
                                   pipeline)
            project.statuses.append(current)
        current.status = str(state)
        if "description" in params:
            current.description = params["description"]
        if target_url is not None:
            current.target_url = str(target_url)
        return self._status(current)

    def _status(self, status: CommitStatus) -> dict[str, Any]:
        finished = status.created_at if status.status in ("success", "failed", "canceled", "skipped") else None
        return {
            "id": status.id, "sha": status.sha, "ref": status.ref, "status": status.status,
            "name": status.name, "target_url": status.target_url, "description": status.description,
            "created_at": status.created_at,
            "started_at": None if status.status in ("created", "pending") else status.created_at,
            "finished_at": finished, "allow_failure": status.allow_failure, "coverage": None,
            "pipeline_id": status.pipeline_id,
            "author": _user(status.author, self.url),
        }

    def _list_merge_requests(self, project: Project, params: dict[str, Any], raw_path: str,
                             host: str) -> tuple[int, Any, dict[str, str]]:
        """List project merge requests: `state` opened, closed, locked, merged or all (the
        default); `target_branch`, `source_branch`; `order_by` created_at (default) or
        updated_at, `sort` desc (default) or asc. Items lack what only the single merge request
        has (diff_refs, pipelines, changes_count, the user's can_merge, ...)."""
        state = str(params.get("state", "all"))
        if state not in ("opened", "closed", "locked", "merged", "all"):
            raise _Reply(400, {"error": "state does not have a valid value"})
        if params.get("sort", "desc") not in ("asc", "desc"):
            raise _Reply(400, {"error": "sort does not have a valid value"})
        found = [mr for mr in project.merge_requests.values() if state == "all" or mr.state == state]
        for key in ("target_branch", "source_branch"):
            if key in params:
                found = [mr for mr in found if getattr(mr, key) == params[key]]
        found.sort(key=lambda mr: (mr.created_at, mr.id), reverse=params.get("sort", "desc") == "desc")
        page, headers = self._paginate(found, params, raw_path, host)
        single_only = ("subscribed", "changes_count", "latest_build_started_at", "latest_build_finished_at",
                       "first_deployed_to_production_at", "pipeline", "head_pipeline", "diff_refs", "merge_error",
                       "first_contribution", "user")
        return 200, [{k: v for k, v in self._mr(project, mr, host).items() if k not in single_only}
                     for mr in page], headers

    def _member(self, project: Project, user_id: str) -> dict[str, Any]:
        uid = _int(user_id)
        candidates = [project.members.get(uid)]
        parts = project.path_with_namespace.split("/")
        candidates += [self.groups.get("/".join(parts[:i]), {}).get(uid) for i in range(1, len(parts))]
        found = [m for m in candidates if m is not None]
        if not found:
            raise _message(404, "Not found")
        return self._membership(max(found, key=lambda m: m.access_level))

    def _membership(self, best: Membership) -> dict[str, Any]:
        return {**_user(best.user, self.url), "access_level": best.access_level, "created_at": best.created_at,
                "created_by": _user(self.bot, self.url), "expires_at": best.expires_at,
                "membership_state": best.membership_state}

    def _find_project(self, key: str) -> Project | None:
        if key.isdigit():
            return self.projects.get(int(key))
        for project in self.projects.values():
            if project.path_with_namespace.lower() == key.lower():
                return project
        return None

    def _paginate(self, items: list[Any], params: dict[str, Any], raw_path: str,
                  host: str) -> tuple[list[Any], dict[str, str]]:
        page = max(1, _int(params.get("page", 1), 1))
        per_page = _int(params.get("per_page", 20), 20)
        per_page = 20 if per_page < 1 else min(per_page, self.max_per_page)
        total = len(items)
        pages = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def link(number: int) -> str:
            query = {k: v for k, v in params.items() if not isinstance(v, (dict, list))}
            query.update(page=number, per_page=per_page)
            return f"http://{host}{raw_path}?{urlencode(query)}"

        links = []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links += [f'<{link(1)}>; rel="first"', f'<{link(pages)}>; rel="last"']
        headers = {
            "X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(total), "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "", "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join(links),
        }
        return chunk, headers

    # -- shapes ---------------------------------------------------------------------------------

    def _project(self, project: Project, host: str) -> dict[str, Any]:
        web = f"http://{host}/{project.path_with_namespace}"
        namespace = project.namespace
        return {
            "id": project.id, "description": "", "name": project.name,
            "name_with_namespace": project.path_with_namespace.replace("/", " / "), "path": project.name,
            "path_with_namespace": project.path_with_namespace, "created_at": project.created_at,
            "default_branch": project.default_branch, "tag_list": [], "topics": [],
            "ssh_url_to_repo": f"git@{host.split(':')[0]}:{project.path_with_namespace}.git",
            "http_url_to_repo": f"{web}.git", "web_url": web, "readme_url": None, "avatar_url": None,
            "forks_count": 0, "star_count": 0, "last_activity_at": project.created_at,
            "namespace": {"id": 1, "name": namespace.rsplit("/", 1)[-1], "path": namespace.rsplit("/", 1)[-1],
                          "kind": "group", "full_path": namespace, "parent_id": None, "avatar_url": None,
                          "web_url": f"http://{host}/groups/{namespace}"},
            "visibility": "private", "archived": False, "empty_repo": False,
        }

    def _mr(self, project: Project, mr: MergeRequest, host: str) -> dict[str, Any]:
        merged = mr.state == "merged"
        closed = mr.state == "closed"
        return {
            "id": mr.id, "iid": mr.iid, "project_id": project.id, "title": mr.title, "description": mr.description,
            "state": mr.state, "created_at": mr.created_at, "updated_at": mr.created_at,
            "merged_by": _user(self.bot, self.url) if merged else None,
            "merge_user": _user(self.bot, self.url) if merged else None,
            "merged_at": mr.created_at if merged else None,
            "closed_by": _user(self.bot, self.url) if closed else None,
            "closed_at": mr.created_at if closed else None,
            "target_branch": mr.target_branch, "source_branch": mr.source_branch,
            "user_notes_count": sum(1 for n in mr.notes if not n.system), "upvotes": 0, "downvotes": 0,
            "author": _user(mr.author, self.url), "assignees": [], "assignee": None, "reviewers": [],
            "source_project_id": mr.source_project_id or project.id, "target_project_id": project.id,
            "labels": [],
            "draft": mr.draft, "work_in_progress": mr.draft, "milestone": None,
            "merge_when_pipeline_succeeds": False, "merge_status": _MERGE_STATUS.get(mr.detailed_merge_status,
                                                                                     "can_be_merged"),
            **({"detailed_merge_status": mr.detailed_merge_status} if self.detailed_merge_status else {}),
            "sha": mr.sha, "merge_commit_sha": mr.merge_commit_sha,
            "squash_commit_sha": mr.squash_commit_sha, "discussion_locked": None,
            "should_remove_source_branch": None, "force_remove_source_branch": False,
            "reference": f"!{mr.iid}",
            "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}",
                           "full": f"{project.path_with_namespace}!{mr.iid}"},
            "web_url": f"http://{host}/{project.path_with_namespace}/-/merge_requests/{mr.iid}",
            "time_stats": {"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None,
                           "human_total_time_spent": None},
            "squash": mr.squash_commit_sha is not None, "squash_on_merge": mr.squash_commit_sha is not None,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": mr.detailed_merge_status == "conflict",
            "blocking_discussions_resolved": True, "subscribed": False, "changes_count": "1",
            "latest_build_started_at": None, "latest_build_finished_at": None,
            "first_deployed_to_production_at": None, "pipeline": None, "head_pipeline": None,
            "diff_refs": {"base_sha": mr.base_sha, "head_sha": mr.sha, "start_sha": mr.start_sha},
            "merge_error": None, "first_contribution": False, "user": {"can_merge": True},
        }

    def _approvals(self, project: Project, mr: MergeRequest, host: str) -> dict[str, Any]:
        return {
            "id": mr.id, "iid": mr.iid, "project_id": project.id, "title": mr.title,
            "description": mr.description, "state": mr.state, "created_at": mr.created_at,
            "updated_at": mr.created_at, "merge_status": "can_be_merged", "approved": bool(mr.approved_by),
            "approvals_required": 0, "approvals_left": 0, "require_password_to_approve": False,
            "approved_by": [{"user": _user(u, self.url)} for u in mr.approved_by],
            "suggested_approvers": [], "approvers": [], "approver_groups": [],
            "user_has_approved": any(u.id == self.bot.id for u in mr.approved_by),
            "user_can_approve": True, "approval_rules_left": [], "has_approval_rules": False,
            "merge_request_approvers_available": False, "multiple_approval_rules_available": False,
            "invalid_approvers_rules": [],
        }

    def _note(self, project: Project, mr: MergeRequest, note: Note, host: str) -> dict[str, Any]:
        return {
            "id": note.id, "type": None, "body": note.body, "attachment": None, "author": _user(note.author, self.url),
            "created_at": note.created_at, "updated_at": note.updated_at, "system": note.system,
            "noteable_id": mr.id, "noteable_type": "MergeRequest", "project_id": project.id,
            "resolvable": False, "confidential": False, "internal": False, "imported": False,
            "imported_from": "none", "noteable_iid": mr.iid, "commands_changes": {},
        }


def _user(user: User, base: str) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "name": user.name, "state": user.state, "locked": False,
            "avatar_url": None, "web_url": f"{base}/{quote(user.username)}"}


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _int(value: Any, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _check_note_length(text: str) -> None:
    if len(text) > NOTE_LIMIT:
        raise _Reply(400, {"message": {"note": [f"is too long (maximum is {NOTE_LIMIT} characters)"]}})


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    if "x-www-form-urlencoded" in content_type:
        return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    return None


def _failure_reply(failure: _Failure) -> _Reply:
    headers: dict[str, str] = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = failure.retry_after
    if failure.status == 429:
        # GitLab's rate-limit response: plain text and the RateLimit-* headers.
        reset = int(time.time()) + int(float(failure.retry_after or 60))
        headers.update({"RateLimit-Limit": "600", "RateLimit-Name": "throttle_authenticated_api",
                        "RateLimit-Observed": "601", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
                        "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
                        "Content-Type": "text/plain"})
        return _Reply(429, b"Retry later\n", headers)
    if failure.status in (502, 503, 504):
        headers["Content-Type"] = "text/html"
        page = f"<!DOCTYPE html><html><head><title>GitLab is not responding ({failure.status})</title></head>" \
               f"<body><h1>{failure.status}</h1><p>Whoops, GitLab is taking too much time to respond.</p></body></html>"
        return _Reply(failure.status, page.encode(), headers)
    texts = {500: "Internal Server Error", 409: "Conflict", 403: "Forbidden", 404: "Not Found"}
    return _Reply(failure.status, {"message": f"{failure.status} {texts.get(failure.status, 'Error')}"}, headers)
