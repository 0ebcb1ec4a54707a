"""GitLab.com and self-managed GitLab behind `base.Forge`, through python-gitlab only.

Every API call goes through python-gitlab; its requests session carries one adapter of ours
that only observes: it counts each HTTP exchange per status code (`on_call("gitlab", code)`,
code 0 for a connection that produced no response) and remembers the last response's headers
per thread, so a refused call's `Retry-After` reaches the `ForgeError`. python-gitlab does not
retry unless `retries` > 0: by default every failure is raised at once, as a `ForgeError`
marked `retryable` for 5xx, 429, 409 (GitLab's "another update is in progress" lock) and
network errors, and the job queue retries with its own backoff.

The token goes only into python-gitlab's `PRIVATE-TOKEN` header and into `clone_credentials`;
it is never logged, error messages are redacted of it, and a `ForgeError` is raised `from None`
(its traceback shows no library exception carrying the request).

Mapping onto the forge-neutral types:

- merge request states: `opened` (and `locked`, a merge in progress) -> open, `closed`, `merged`;
  the merge SHA is `merge_commit_sha`, else `squash_commit_sha`, else (a fast-forward merge,
  which makes no commit of its own) the merged head `sha`;
- approvers: `approved_by` of the MR approvals endpoint; an instance or tier without it
  (403/404) means no approvers;
- commit statuses: pending/success -> pending/success, failure -> failed, error -> failed with
  the description saying it is an error; `context` is the status name; a commit on no branch
  (a fork's MR head) gets the ref it is reachable from (`set_status`). GitLab refuses a second
  `pending` on a job that is already pending or running ("Cannot transition status via
  :enqueue"): that status already says what was asked, so it is not an error;
- roles: the member's `access_level` on the project including inherited memberships
  (`members/all`): 50 owner -> admin, 40 maintainer -> maintain, 30 developer -> write,
  20 reporter / 15 planner / 10 guest -> read; 5 (minimal access), no membership, a blocked
  user, an awaiting or expired membership -> none. Team membership (`member_of`) is the same
  reading of the group's `members/all`: any role but none;
- reactions: base.REACTIONS (GitHub's names) as award emoji on the note ("+1" thumbsup, "-1"
  thumbsdown, "laugh" laughing, "hooray" tada, the others by the same name);
- merging: `sha` pins the head, `squash` is the only per-merge choice (the merge method is the
  project's setting); the landed commit as in `fetch_change`. Mergeability is the MR's
  `detailed_merge_status` (`merge_status` before GitLab 15.6).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, NoReturn

import gitlab
import gitlab.exceptions
import requests
from requests.adapters import HTTPAdapter

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
from bot.gitcmd import RecentSet
from bot.redact import redact

DEFAULT_URL = "https://gitlab.com"
COMMENT_LIMIT = 1_000_000  # GitLab's maximum note length, in characters
STATUS_DESCRIPTION_LIMIT = 255
PER_PAGE = 100  # GitLab's largest page
REFS_NEEDED_KNOWN = 1024  # commits remembered as needing a ref for their statuses

_STATES: dict[StatusState, str] = {"pending": "pending", "success": "success", "failure": "failed",
                                   "error": "failed"}
# GitLab's commit status states as `Forge.statuses` reports them ("failed" is decided by its description).
_NEUTRAL_STATES = {"created": "pending", "waiting_for_resource": "pending", "preparing": "pending",
                   "pending": "pending", "running": "pending", "scheduled": "pending", "manual": "pending",
                   "success": "success"}
_MR_STATES: dict[str, Literal["open", "closed", "merged"]] = {
    "opened": "open", "locked": "open", "reopened": "open", "closed": "closed", "merged": "merged"}
# (lowest access_level, role), highest first.
_ROLES: tuple[tuple[int, str], ...] = ((50, "admin"), (40, "maintain"), (30, "write"), (10, "read"))
# The reactions of base.REACTIONS (GitHub's names) as GitLab's emoji names.
_EMOJI: dict[str, str] = {"+1": "thumbsup", "-1": "thumbsdown", "laugh": "laughing", "confused": "confused",
                          "heart": "heart", "hooray": "tada", "rocket": "rocket", "eyes": "eyes"}
_MERGE_METHODS = ("merge", "squash", "rebase")
# detailed_merge_status (GitLab 15.6+) -> (mergeable, reason); None: GitLab is still checking.
_DETAILED_MERGE_STATUS: dict[str, tuple[bool | None, str]] = {
    "mergeable": (True, "mergeable"),
    "checking": (None, "GitLab is checking whether it can be merged; ask again shortly"),
    "unchecked": (None, "GitLab has not checked yet whether it can be merged; ask again shortly"),
    "preparing": (None, "GitLab is still preparing its diff; ask again shortly"),
    "approvals_syncing": (None, "GitLab is syncing its approvals; ask again shortly"),
    "not_approved": (False, "it needs approval"),
    "requested_changes": (False, "a reviewer requested changes"),
    "conflict": (False, "it has merge conflicts with the target branch"),
    "draft_status": (False, "it is a draft"),
    "ci_must_pass": (False, "a pipeline must succeed first"),
    "ci_still_running": (False, "its pipeline is still running"),
    "discussions_not_resolved": (False, "its discussions are not all resolved"),
    "need_rebase": (False, "it must be rebased onto the target branch first"),
    "blocked_status": (False, "another merge request blocks it"),
    "merge_request_blocked": (False, "another merge request blocks it"),
    "not_open": (False, "it is not open"),
    "commits_status": (False, "its source branch is missing or has no commits"),
    "merge_time": (False, "it may not be merged before its merge-after time"),
    "jira_association_missing": (False, "its title or description must name a Jira issue"),
    "status_checks_must_pass": (False, "external status checks must pass first"),
    "external_status_checks": (False, "external status checks must pass first"),
    "security_policy_violations": (False, "security policies are not satisfied"),
    "policies_denied": (False, "security policies are not satisfied"),
    "locked_paths": (False, "paths it changes are locked by other users"),
    "locked_lfs_files": (False, "LFS files it changes are locked by other users"),
}
# The statuses that list the pipeline's failing or unfinished jobs and statuses in blocked_by.
_CI_BLOCKED = frozenset({"ci_must_pass", "ci_still_running"})
# merge_status (deprecated in 15.6) for an older GitLab without detailed_merge_status.
_MERGE_STATUS: dict[str, tuple[bool | None, str]] = {
    "can_be_merged": (True, "mergeable"),
    "cannot_be_merged": (False, "it has merge conflicts with the target branch"),
    "unchecked": (None, "GitLab has not checked yet whether it can be merged; ask again shortly"),
    "checking": (None, "GitLab is checking whether it can be merged; ask again shortly"),
    "cannot_be_merged_recheck": (None, "GitLab is checking again whether it can be merged; ask again shortly"),
}

OnCall = Callable[[str, int], None]


class _ObservingAdapter(HTTPAdapter):
    """Counts every HTTP exchange and keeps the last response's headers of each thread. It
    changes nothing in the request or the response."""

    def __init__(self, on_call: OnCall | None, last: threading.local) -> None:
        super().__init__()
        self._on_call = on_call
        self._last = last

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self._last.response = None
        try:
            response = super().send(request, *args, **kwargs)
        except requests.RequestException:
            self._count(0)
            raise
        self._last.response = (response.status_code, dict(response.headers))
        self._count(response.status_code)
        return response

    def _count(self, code: int) -> None:
        if self._on_call is not None:
            self._on_call("gitlab", code)


class GitLabForge:
    """GitLab (`url`: https://gitlab.com or a self-managed instance's root URL) with a personal,
    project or group access token (`token`, sent as PRIVATE-TOKEN).

    `on_call(forge, code)` is called once per HTTP exchange with its status code (0: no
    response). `timeout` bounds each request, in seconds. `retries` > 0 lets python-gitlab
    itself retry transient errors and rate limits that many times (sleeping as GitLab asks)
    before a `ForgeError` is raised; the default 0 leaves retrying to the caller."""

    name: ForgeName = "gitlab"

    def __init__(self, token: str, *, url: str = DEFAULT_URL, on_call: OnCall | None = None,
                 timeout: float = 30.0, retries: int = 0, ssl_verify: bool | str = True) -> None:
        if not token:
            raise ForgeError("GitLab: no token given (set PROMISEBOT_GITLAB_TOKEN)")
        self.url = url.rstrip("/")
        self._token = token
        self._last = threading.local()
        session = requests.Session()
        adapter = _ObservingAdapter(on_call, self._last)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._gl = gitlab.Gitlab(self.url, private_token=token, timeout=timeout, ssl_verify=ssl_verify,
                                 per_page=PER_PAGE, keep_base_url=True, session=session,
                                 user_agent=f"promisebot python-gitlab/{gitlab.__version__}",
                                 retry_transient_errors=retries > 0)
        # Per call: python-gitlab's retry loop (429 included) runs only when asked for.
        self._call: dict[str, Any] = {"max_retries": retries, "obey_rate_limit": retries > 0,
                                      "retry_transient_errors": retries > 0}
        # (project, sha) of commits on no branch (a fork's MR head): their statuses need a ref.
        self._refs_needed: RecentSet[tuple[int | str, str]] = RecentSet(REFS_NEEDED_KNOWN)
        self._login: str | None = None  # whoami, once asked
        self._login_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitLabForge(url={self.url!r})"

    # -- Forge ------------------------------------------------------------------------------

    def repository(self, full_name: str) -> Repo:
        return self.repo(full_name)

    def open_changes(self, repo: Repo) -> list[Change]:
        """GET /projects/:id/merge_requests?state=opened, every page. The list's items carry no
        `diff_refs`, so `base_sha` is empty (as are `approvers`)."""
        try:
            listed = [mr.attributes for mr in self._project(repo).mergerequests.list(
                state="opened", iterator=True, **self._call)]
        except Exception as e:
            self._raise(f"listing the open merge requests of {repo.full_name}", e)
        changes = []
        paths: dict[int, str] = {}
        for attrs in listed:
            author = attrs.get("author") or {}
            draft = attrs.get("draft")
            changes.append(Change(
                number=int(attrs["iid"]), url=str(attrs.get("web_url") or ""), state="open",
                head_sha=str(attrs.get("sha") or ""), base_ref=str(attrs.get("target_branch") or ""),
                base_sha=str((attrs.get("diff_refs") or {}).get("base_sha") or ""), merge_sha="",
                author=str(author.get("username") or ""),
                draft=bool(draft if draft is not None else attrs.get("work_in_progress", False)),
                title=str(attrs.get("title") or ""), **self._head_repo(repo, attrs, paths)))
        return sorted(changes, key=lambda c: c.number)

    def statuses(self, repo: Repo, sha: str) -> dict[str, str]:
        """GET /projects/:id/repository/commits/:sha/statuses, every page (GitLab lists the
        latest status of each name and ref; of several refs, the newest status wins). States
        map back as `set_status` maps them: failed is "error" when its description says so."""
        latest: dict[str, str] = {}
        for attrs in self._statuses(repo, sha):
            state = str(attrs.get("status") or "")
            if state == "failed":
                state = "error" if str(attrs.get("description") or "").startswith("error: ") else "failure"
            latest[str(attrs.get("name") or "default")] = _NEUTRAL_STATES.get(state, state)
        return latest

    def fetch_change(self, repo: Repo, number: int) -> Change:
        what = f"fetching merge request !{number} of {repo.full_name}"
        try:
            mr = self._project(repo).mergerequests.get(number, **self._call)
            approvers = self._approvers(mr)
        except Exception as e:  # every failure becomes a ForgeError
            self._raise(what, e)
        attrs = mr.attributes
        state = _MR_STATES.get(str(attrs.get("state")))
        if state is None:
            raise ForgeError(f"GitLab: {what}: unknown merge request state {attrs.get('state')!r}")
        head_repo = self._head_repo(repo, attrs, {})
        head = attrs.get("sha") or ""
        merge = attrs.get("merge_commit_sha") or attrs.get("squash_commit_sha") or ""
        if state == "merged" and not merge:
            merge = head  # fast-forward merge: the head itself landed
        diff_refs = attrs.get("diff_refs") or {}
        author = attrs.get("author") or {}
        draft = attrs.get("draft")
        return Change(
            number=int(attrs.get("iid", number)),
            url=str(attrs.get("web_url") or ""),
            state=state,
            head_sha=head,
            base_ref=str(attrs.get("target_branch") or ""),
            base_sha=str(diff_refs.get("base_sha") or ""),
            merge_sha=merge,
            author=str(author.get("username") or ""),
            approvers=approvers,
            draft=bool(draft if draft is not None else attrs.get("work_in_progress", False)),
            title=str(attrs.get("title") or ""),
            **head_repo,
        )

    def head_ref(self, number: int) -> str:
        return f"refs/merge-requests/{number}/head"

    def comments(self, repo: Repo, number: int) -> list[Comment]:
        """The MR's comments, oldest first; system notes ("added 1 commit", ...) left out."""
        try:
            notes = self._mr(repo, number).notes.list(iterator=True, sort="asc", order_by="created_at",
                                                      **self._call)
            return [_comment(note.attributes) for note in notes if not note.attributes.get("system")]
        except Exception as e:
            self._raise(f"listing the comments of merge request !{number} of {repo.full_name}", e)

    def create_comment(self, repo: Repo, number: int, body: str) -> Comment:
        try:
            note = self._mr(repo, number).notes.create({"body": body}, **self._call)
        except Exception as e:
            self._raise(f"commenting on merge request !{number} of {repo.full_name}", e)
        return _comment(note.attributes)

    def edit_comment(self, repo: Repo, number: int, comment_id: int, body: str) -> None:
        try:
            self._mr(repo, number).notes.update(comment_id, {"body": body}, **self._call)
        except Exception as e:
            self._raise(f"editing comment {comment_id} of merge request !{number} of {repo.full_name}", e)

    def set_status(self, repo: Repo, sha: str, context: str, state: StatusState, description: str,
                   target_url: str = "", ref: str = "") -> None:
        """Without a `ref`, GitLab files the status under the first branch holding the commit:
        for an MR from the same project that is its source branch, whose pipeline the MR and
        "Pipelines must succeed" read, so that is tried first. A fork's MR head is on no branch
        of the project (404 "References for commit"): then `ref` (refs/merge-requests/N/head)
        is sent, and sent at once for that commit from then on."""
        if state not in _STATES:
            raise ForgeError(f"GitLab: unknown commit status state {state!r}")
        text = f"error: {description}" if state == "error" else description
        if len(text) > STATUS_DESCRIPTION_LIMIT:
            text = text[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        data: dict[str, Any] = {"state": _STATES[state], "name": context, "description": text}
        if target_url:
            data["target_url"] = target_url
        key = (repo.project_id or repo.full_name, sha)
        if ref and key in self._refs_needed:
            data["ref"] = ref
        what = f"setting status {context!r} on {sha[:12]} of {repo.full_name}"
        while True:
            try:
                self._project(repo).commits.get(sha, lazy=True).statuses.create(data, **self._call)
                return
            except gitlab.exceptions.GitlabError as e:
                if (state == "pending" and e.response_code == 400
                        and "Cannot transition status via :enqueue" in str(e.error_message)):
                    return  # already pending (or running): what was asked holds
                if (ref and "ref" not in data and e.response_code == 404
                        and "References for commit" in str(e.error_message)):
                    self._refs_needed.add(key)
                    data["ref"] = ref
                    continue
                self._raise(what, e)
            except Exception as e:
                self._raise(what, e)

    def permission(self, repo: Repo, user: str) -> str:
        what = f"reading {user!r}'s role on {repo.full_name}"
        try:
            found = [u for u in self._gl.users.list(username=user, get_all=False, **self._call)
                     if str(u.attributes.get("username", "")).lower() == user.lower()]
            if not found:
                return "none"
            try:
                member = self._project(repo).members_all.get(found[0].get_id(), **self._call)
            except gitlab.exceptions.GitlabError as e:
                if e.response_code == 404:
                    return "none"
                raise
        except Exception as e:
            self._raise(what, e)
        return _role(member.attributes)

    def clone_credentials(self, repo: Repo) -> Credentials | None:
        return Credentials(username="oauth2", password=self._token)

    def comment_limit(self) -> int:
        return COMMENT_LIMIT

    def react(self, repo: Repo, number: int, comment_id: int, reaction: Reaction = "eyes") -> None:
        """POST /projects/:id/merge_requests/:iid/notes/:note_id/award_emoji with the emoji's
        GitLab name. GitLab refuses a second identical award of the same user with 404 "Award
        Emoji ... has already been taken" (the model's uniqueness validation): that means done."""
        if reaction not in REACTIONS:
            raise ValueError(f"unknown reaction {reaction!r}; one of {', '.join(REACTIONS)}")
        name = _EMOJI[reaction]
        what = f"reacting :{name}: to comment {comment_id} of merge request !{number} of {repo.full_name}"
        try:
            self._mr(repo, number).notes.get(comment_id, lazy=True).awardemojis.create({"name": name}, **self._call)
        except gitlab.exceptions.GitlabError as e:
            if e.response_code in (404, 409) and "already" in str(e.error_message).lower():
                return
            self._raise(what, e)
        except Exception as e:
            self._raise(what, e)

    def whoami(self) -> str:
        """GET /user: the token's username (a project or group access token's bot user). Asked
        once, then cached."""
        with self._login_lock:
            if self._login is None:
                try:
                    user = gitlab.v4.objects.CurrentUserManager(self._gl).get(**self._call)
                except Exception as e:
                    self._raise("reading the user of the token", e)
                self._login = str(user.attributes.get("username") or "")
                if not self._login:
                    raise ForgeError("GitLab: the user of the token has no username")
            return self._login

    def member_of(self, repo: Repo, user: str, team: str) -> bool:
        """GET /groups/:id/members/all/:user_id (the group by its URL-encoded full path `team`;
        the user's id from GET /users?username=): a direct or inherited member of the group, at
        least Guest, active, not expired and not awaiting. An unknown user or a non-member
        (404 "Not found") is False; an unknown group (404 "Group Not Found") is a ForgeError."""
        what = f"reading {user!r}'s membership of group {team}"
        try:
            found = [u for u in self._gl.users.list(username=user, get_all=False, **self._call)
                     if str(u.attributes.get("username", "")).lower() == user.lower()]
            if not found:
                return False
            try:
                member = self._gl.groups.get(team, lazy=True).members_all.get(found[0].get_id(), **self._call)
            except gitlab.exceptions.GitlabError as e:
                if e.response_code == 404 and "group" in str(e.error_message).lower():
                    raise ForgeError(f"GitLab: group {team} does not exist, or the token cannot see it",
                                     status=404) from None
                if e.response_code == 404:
                    return False
                raise
        except Exception as e:
            self._raise(what, e)
        return _role(member.attributes) != "none"  # Guest (10) or more, active, not expired

    def merge(self, repo: Repo, number: int, *, method: MergeMethod, sha: str) -> str:
        """PUT /projects/:id/merge_requests/:iid/merge with `sha` (GitLab merges only if the head
        is still that: 409 "SHA does not match HEAD of source branch" otherwise) and `squash`.
        GitLab has no per-merge method: merge commit, merge commit with semi-linear history
        or fast-forward is the project's setting, so "merge" and "rebase" both send squash false
        and the project decides. 405 (draft, closed, pipeline or approvals missing), 409 and 422
        ("Branch cannot be merged") are ForgeErrors carrying GitLab's message, not retryable.
        Returns `merge_commit_sha`, else `squash_commit_sha`, else (a fast-forward) the head."""
        if method not in _MERGE_METHODS:
            raise ValueError(f"unknown merge method {method!r}; one of {', '.join(_MERGE_METHODS)}")
        if not sha:
            raise ValueError("merge needs the head sha the merge request must still have")
        what = f"merging merge request !{number} of {repo.full_name} at {sha[:12]} ({method})"
        mr = self._mr(repo, number)
        try:
            data = self._gl.http_put(f"{mr.manager.path}/{mr.encoded_id}/merge",
                                     post_data={"sha": sha, "squash": method == "squash"}, **self._call)
        except gitlab.exceptions.GitlabError as e:
            if e.response_code in (405, 409, 422):
                hint = {405: " (it cannot be merged now: a draft, closed, or missing pipeline success, "
                             "approvals or resolved discussions)",
                        409: " (its head moved)", 422: " (conflicts, or the merge failed)"}[e.response_code]
                detail = redact(str(e.error_message) or type(e).__name__, [self._token])
                raise ForgeError(f"GitLab: {what} failed: HTTP {e.response_code}: {detail}{hint}",
                                 status=e.response_code) from None
            self._raise(what, e)
        except Exception as e:
            self._raise(what, e)
        attrs = data if isinstance(data, dict) else {}
        if attrs.get("state") != "merged":
            raise ForgeError(f"GitLab: {what}: GitLab answered with state {attrs.get('state')!r}"
                             + (f": {attrs['merge_error']}" if attrs.get("merge_error") else ""))
        landed = attrs.get("merge_commit_sha") or attrs.get("squash_commit_sha") or attrs.get("sha") or sha
        return str(landed)

    def mergeability(self, repo: Repo, number: int) -> Mergeability:
        """GET /projects/:id/merge_requests/:iid: `detailed_merge_status` (GitLab 15.6+; before
        it, `merge_status`). mergeable -> True; checking, unchecked, preparing, approvals_syncing
        -> None; everything else -> False with a reason. For ci_must_pass and ci_still_running
        the head's commit statuses and jobs that are not successful (allow_failure ones left
        out) are listed in `blocked_by`."""
        what = f"reading the mergeability of merge request !{number} of {repo.full_name}"
        try:
            attrs = self._project(repo).mergerequests.get(number, **self._call).attributes
        except Exception as e:
            self._raise(what, e)
        state = _MR_STATES.get(str(attrs.get("state")))
        if state == "merged":
            return Mergeability(False, "it is already merged")
        if state == "closed":
            return Mergeability(False, "it is closed")
        detailed = attrs.get("detailed_merge_status")
        if detailed is None:
            merge_status = str(attrs.get("merge_status") or "")
            ok, why = _MERGE_STATUS.get(merge_status, (False, f"GitLab reports merge_status {merge_status!r}"))
            return Mergeability(ok, why)
        ok, why = _DETAILED_MERGE_STATUS.get(str(detailed), (False, f"GitLab reports {detailed!r}"))
        if detailed not in _CI_BLOCKED:
            return Mergeability(ok, why)
        head = str(attrs.get("sha") or "")
        blocked = tuple(sorted({str(s.get("name") or "default") for s in self._statuses(repo, head, latest=True)
                                if s.get("status") != "success" and not s.get("allow_failure")})) if head else ()
        if blocked:
            why = f"{why} (not successful: {', '.join(blocked)})"
        return Mergeability(False, why, blocked)

    # -- beyond the Protocol ----------------------------------------------------------------

    def repo(self, project: str | int) -> Repo:
        """The project with this id or full path (`group/sub/project`), as a `Repo`."""
        try:
            found = self._gl.projects.get(project, **self._call)
        except Exception as e:
            self._raise(f"reading project {project}", e)
        attrs = found.attributes
        return Repo(forge="gitlab", full_name=str(attrs["path_with_namespace"]),
                    clone_url=str(attrs.get("http_url_to_repo") or ""),
                    default_branch=str(attrs.get("default_branch") or ""), project_id=int(attrs["id"]))

    # -- internals ----------------------------------------------------------------------------

    def _project(self, repo: Repo) -> Any:
        # Lazy: no request; GitLab takes the numeric id or the URL-encoded path anywhere.
        return self._gl.projects.get(repo.project_id if repo.project_id is not None else repo.full_name,
                                     lazy=True)

    def _mr(self, repo: Repo, number: int) -> Any:
        return self._project(repo).mergerequests.get(number, lazy=True)

    def _statuses(self, repo: Repo, sha: str, *, latest: bool = False) -> list[dict[str, Any]]:
        """GET /projects/:id/repository/commits/:sha/statuses, every page, oldest first; with
        `latest`, only the newest of each name."""
        try:
            listed = [s.attributes for s in self._project(repo).commits.get(sha, lazy=True).statuses.list(
                iterator=True, **self._call)]
        except Exception as e:
            self._raise(f"reading the statuses of {sha[:12]} of {repo.full_name}", e)
        ordered = sorted(listed, key=lambda a: int(a.get("id") or 0))
        if not latest:
            return ordered
        newest = {str(a.get("name") or "default"): a for a in ordered}
        return list(newest.values())

    def _head_repo(self, repo: Repo, attrs: Mapping[str, Any], paths: dict[int, str]) -> dict[str, Any]:
        """`head_repo` and `from_fork` of a merge request: its source project's path (GET
        /projects/:source_project_id for a fork, remembered in `paths`; "" when the token cannot
        see the fork) and whether it is another project than the target."""
        source, target = attrs.get("source_project_id"), attrs.get("target_project_id")
        if source is None:  # the source project is gone
            return {"head_repo": "", "from_fork": True}
        if source == target:
            return {"head_repo": repo.full_name, "from_fork": False}
        source = int(source)
        if source not in paths:
            try:
                paths[source] = str(self._gl.projects.get(source, **self._call).attributes["path_with_namespace"])
            except gitlab.exceptions.GitlabError as e:
                if e.response_code not in (403, 404):
                    self._raise(f"reading the source project {source} of a merge request of {repo.full_name}", e)
                paths[source] = ""  # a fork the token cannot see (or one deleted since)
            except Exception as e:
                self._raise(f"reading the source project {source} of a merge request of {repo.full_name}", e)
        return {"head_repo": paths[source], "from_fork": True}

    def _approvers(self, mr: Any) -> tuple[str, ...]:
        try:
            approvals = mr.approvals.get(**self._call)
        except gitlab.exceptions.GitlabError as e:
            if e.response_code in (403, 404):
                return ()  # no approvals API on this instance or tier
            raise
        names = []
        for entry in approvals.attributes.get("approved_by") or []:
            username = ((entry or {}).get("user") or {}).get("username")
            if username:
                names.append(str(username))
        return tuple(names)

    def _raise(self, what: str, error: Exception) -> NoReturn:
        status: int | None = None
        retryable = False
        if isinstance(error, gitlab.exceptions.GitlabError):
            status = error.response_code
            detail = str(error.error_message) or type(error).__name__
            if status is not None:
                retryable = status >= 500 or status in (409, 429)
        elif isinstance(error, requests.exceptions.SSLError):
            detail = f"TLS error: {error}"
        elif isinstance(error, (requests.ConnectionError, requests.Timeout,
                                requests.exceptions.ChunkedEncodingError)):
            detail = f"cannot reach {self.url}: {error}"
            retryable = True
        elif isinstance(error, ForgeError):
            raise error
        else:
            detail = f"{type(error).__name__}: {error}"
        retry_after = self._retry_after(status) if status is not None else None
        code = f"HTTP {status}: " if status is not None else ""
        message = redact(f"GitLab: {what} failed: {code}{detail}", [self._token])
        raise ForgeError(message, status=status, retryable=retryable, retry_after=retry_after) from None

    def _retry_after(self, status: int) -> float | None:
        last = getattr(self._last, "response", None)
        if last is None or last[0] != status:
            return None
        return _retry_after(last[1])


def _comment(attrs: Mapping[str, Any]) -> Comment:
    author = attrs.get("author") or {}
    return Comment(id=int(attrs["id"]), body=str(attrs.get("body") or ""), author=str(author.get("username") or ""))


def _role(member: Mapping[str, Any]) -> str:
    if member.get("state", "active") != "active" or member.get("membership_state", "active") != "active":
        return "none"
    expires = member.get("expires_at")
    if expires:
        try:
            if dt.date.fromisoformat(str(expires)[:10]) < dt.datetime.now(dt.UTC).date():
                return "none"
        except ValueError:
            pass
    level = int(member.get("access_level") or 0)
    for lowest, role in _ROLES:
        if level >= lowest:
            return role
    return "none"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or an HTTP date), else GitLab's
    `RateLimit-Reset` (epoch seconds)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value:
        return retry_after_seconds(value)
    reset = lowered.get("ratelimit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None
