"""GitLabForge through python-gitlab, over real HTTP, against the stand-in GitLab REST API
(tests/forge_servers/gitlab.py). Assertions are on what the stand-in recorded and holds."""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlsplit

import gitlab
import pytest
from forge_servers.gitlab import DEFAULT_TOKEN, GitLabServer, MergeRequest, Project

from bot.forges.base import Change, Comment, Credentials, ForgeError, Mergeability, Repo
from bot.forges.gitlab import COMMENT_LIMIT, GitLabForge

PATH = "platform/infra/promises"  # a project in a subgroup: group/sub/project
ENCODED = "platform%2Finfra%2Fpromises"
HEAD, BASE, MERGE, SQUASH = "a1" * 20, "b2" * 20, "c3" * 20, "d4" * 20


@pytest.fixture
def server() -> Iterator[GitLabServer]:
    with GitLabServer() as s:
        yield s
    assert not s.errors  # the stand-in itself never failed


@pytest.fixture
def project(server: GitLabServer) -> Project:
    return server.add_project(PATH)


@pytest.fixture
def mr(server: GitLabServer, project: Project) -> MergeRequest:
    return server.add_merge_request(project, sha=HEAD, base_sha=BASE, author="alice", title="Add a database")


@pytest.fixture
def calls() -> Counter[tuple[str, int]]:
    return Counter()


@pytest.fixture
def forge(server: GitLabServer, calls: Counter[tuple[str, int]]) -> GitLabForge:
    return GitLabForge(DEFAULT_TOKEN, url=server.url, on_call=lambda forge, code: calls.update([(forge, code)]))


@pytest.fixture
def repo(project: Project, server: GitLabServer) -> Repo:
    """Addressed by path only, as a webhook's `path_with_namespace` gives it."""
    return Repo(forge="gitlab", full_name=PATH, clone_url=f"{server.url}/{PATH}.git", default_branch="main")


# -- fetch_change ------------------------------------------------------------------------------


def test_fetch_change_open_with_approvals(server, forge, repo, mr, calls):
    server.approve(mr, "bob")
    server.approve(mr, "carol")

    change = forge.fetch_change(repo, mr.iid)

    assert change.number == 1
    assert change.state == "open"
    assert change.head_sha == HEAD
    assert change.base_ref == "main"
    assert change.base_sha == BASE
    assert change.merge_sha == ""
    assert change.author == "alice"
    assert change.approvers == ("bob", "carol")
    assert change.draft is False
    assert change.title == "Add a database"
    assert change.url == f"{server.url}/{PATH}/-/merge_requests/1"
    got = server.calls()
    assert [(r.method, r.raw_path) for r in got] == [
        ("GET", f"/api/v4/projects/{ENCODED}/merge_requests/1"),
        # python-gitlab addresses the approvals through the MR's numeric project_id
        ("GET", f"/api/v4/projects/{mr.project_id}/merge_requests/1/approvals"),
    ]
    assert all(r.headers.get("PRIVATE-TOKEN") == DEFAULT_TOKEN for r in got)
    assert calls == Counter({("gitlab", 200): 2})


def test_fetch_change_by_project_id(server, forge, project, mr):
    repo = Repo(forge="gitlab", full_name=PATH, clone_url="", default_branch="main", project_id=project.id)
    assert forge.fetch_change(repo, 1).head_sha == HEAD
    assert server.calls()[0].raw_path == f"/api/v4/projects/{project.id}/merge_requests/1"


@pytest.mark.parametrize(("state", "merge_commit", "squash_commit", "expected_state", "expected_merge"), [
    ("merged", MERGE, None, "merged", MERGE),
    ("merged", MERGE, SQUASH, "merged", MERGE),
    ("merged", None, SQUASH, "merged", SQUASH),
    ("merged", None, None, "merged", HEAD),  # fast-forward: the head itself landed
    ("closed", None, None, "closed", ""),
    ("locked", None, None, "open", ""),  # a merge in progress
])
def test_fetch_change_states_and_merge_sha(server, forge, repo, project, state, merge_commit, squash_commit,
                                           expected_state, expected_merge):
    server.add_merge_request(project, sha=HEAD, base_sha=BASE, state=state, merge_commit_sha=merge_commit,
                             squash_commit_sha=squash_commit)
    change = forge.fetch_change(repo, 1)
    assert (change.state, change.merge_sha) == (expected_state, expected_merge)


def test_fetch_change_draft(server, forge, repo, project):
    server.add_merge_request(project, sha=HEAD, base_sha=BASE, draft=True, title="Draft: try")
    assert forge.fetch_change(repo, 1).draft is True


def test_fetch_change_without_approvals_api(repo):
    # An instance without the approvals endpoint answers 404: no approvers, no error.
    with GitLabServer(approvals_api=False) as other:
        project = other.add_project(PATH)
        other.add_merge_request(project, sha=HEAD, base_sha=BASE)
        change = GitLabForge(DEFAULT_TOKEN, url=other.url).fetch_change(repo, 1)
    assert change.approvers == ()
    assert other.calls()[-1].status == 404 and not other.errors


def test_fetch_change_unknown_merge_request(forge, repo, project):
    with pytest.raises(ForgeError) as caught:
        forge.fetch_change(repo, 99)
    assert caught.value.status == 404
    assert not caught.value.retryable
    assert "!99" in str(caught.value)


# -- comments ----------------------------------------------------------------------------------


def test_create_find_and_edit_a_comment(server, forge, repo, mr):
    server.add_note(mr, "Looks good", author="bob")
    server.add_note(mr, "added 1 commit", author="alice", system=True)

    created = forge.create_comment(repo, 1, "<!-- promisebot:plan -->\nplan v1")

    assert created.author == "promisebot"
    assert mr.notes[-1].id == created.id and mr.notes[-1].body.endswith("plan v1")
    post = server.calls("POST", "/notes")[0]
    assert post.raw_path == f"/api/v4/projects/{ENCODED}/merge_requests/1/notes"
    assert post.body == {"body": "<!-- promisebot:plan -->\nplan v1"}
    assert post.status == 201

    found = forge.comments(repo, 1)
    assert [(c.body.splitlines()[-1], c.author) for c in found] == [("Looks good", "bob"), ("plan v1", "promisebot")]
    ours = next(c for c in found if "<!-- promisebot:plan -->" in c.body)
    assert ours == Comment(id=created.id, body=created.body, author="promisebot")
    listing = server.calls("GET", "/notes")[0]
    assert listing.query["sort"] == ["asc"] and listing.query["order_by"] == ["created_at"]

    forge.edit_comment(repo, 1, ours.id, "<!-- promisebot:plan -->\nplan v2")

    assert mr.notes[-1].body.endswith("plan v2")
    put = server.calls("PUT")[0]
    assert put.raw_path == f"/api/v4/projects/{ENCODED}/merge_requests/1/notes/{ours.id}"
    assert put.body == {"body": "<!-- promisebot:plan -->\nplan v2"}
    assert len([n for n in mr.notes if not n.system]) == 2


def test_editing_someone_elses_comment_is_refused(server, forge, repo, mr):
    note = server.add_note(mr, "mine", author="bob")
    with pytest.raises(ForgeError) as caught:
        forge.edit_comment(repo, 1, note.id, "hijacked")
    assert caught.value.status == 403 and not caught.value.retryable
    assert note.body == "mine"


def test_comments_follow_pagination(forge, repo):
    # 45 notes, 9 of them system notes, at most 10 per page: python-gitlab follows Link rel="next".
    with GitLabServer(max_per_page=10) as small:
        project = small.add_project(PATH)
        mr = small.add_merge_request(project, sha=HEAD, base_sha=BASE)
        for i in range(45):
            small.add_note(mr, f"note {i}", author="bob", system=i % 5 == 0)
        found = GitLabForge(DEFAULT_TOKEN, url=small.url).comments(repo, 1)
        pages = small.calls("GET", "/notes")
    assert not small.errors

    assert [c.body for c in found] == [f"note {i}" for i in range(45) if i % 5 != 0]
    assert len(pages) == 5
    assert [r.query.get("page", ["1"])[0] for r in pages] == ["1", "2", "3", "4", "5"]
    assert all(r.query["per_page"] == ["100"] and r.status == 200 for r in pages)
    assert all(r.raw_path == f"/api/v4/projects/{ENCODED}/merge_requests/1/notes" for r in pages)


def test_pagination_headers_as_python_gitlab_reads_them(server, project, mr):
    for i in range(5):
        server.add_note(mr, f"n{i}")
    gl = gitlab.Gitlab(server.url, private_token=DEFAULT_TOKEN)
    listing = gl.projects.get(PATH, lazy=True).mergerequests.get(1, lazy=True).notes.list(iterator=True, per_page=2)
    assert (listing.current_page, listing.per_page, listing.total, listing.total_pages) == (1, 2, 5, 3)
    assert listing.next_page == 2 and listing.prev_page is None
    assert [n.body for n in listing] == ["n4", "n3", "n2", "n1", "n0"]  # GitLab's default: newest first
    last = server.calls("GET", "/notes")[-1]
    assert last.query["page"] == ["3"]


def test_comment_limit_and_refs(forge, repo):
    assert forge.comment_limit() == COMMENT_LIMIT == 1_000_000
    assert forge.head_ref(7) == "refs/merge-requests/7/head"
    assert forge.clone_credentials(repo) == Credentials(username="oauth2", password=DEFAULT_TOKEN)
    assert DEFAULT_TOKEN not in repr(forge.clone_credentials(repo))
    assert DEFAULT_TOKEN not in repr(forge)


def test_a_comment_over_the_limit_is_refused(server, forge, repo, mr):
    with pytest.raises(ForgeError) as caught:
        forge.create_comment(repo, 1, "x" * (COMMENT_LIMIT + 1))
    assert caught.value.status == 400 and "too long" in str(caught.value)
    forge.create_comment(repo, 1, "x" * COMMENT_LIMIT)
    assert len(mr.notes[-1].body) == COMMENT_LIMIT


# -- statuses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "gitlab_state", "description"), [
    ("pending", "pending", "planning"),
    ("success", "success", "2 files added"),
    ("failure", "failed", "1 invalid request"),
    ("error", "failed", "error: promisebot could not finish"),
])
def test_set_status_maps_each_state(server, forge, repo, project, mr, state, gitlab_state, description):
    given = description.removeprefix("error: ")
    forge.set_status(repo, HEAD, "promisebot/plan", state, given, target_url="https://ci.example/plan/1")

    [status] = server.statuses(project, HEAD)
    assert (status.name, status.status, status.description, status.target_url) == (
        "promisebot/plan", gitlab_state, description, "https://ci.example/plan/1")
    assert status.ref == "feature"
    post = server.calls("POST", "/statuses/")[0]
    assert post.raw_path == f"/api/v4/projects/{ENCODED}/statuses/{HEAD}"
    assert post.body == {"state": gitlab_state, "name": "promisebot/plan", "description": description,
                         "target_url": "https://ci.example/plan/1"}


def test_status_lifecycle(server, forge, repo, project, mr):
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning")
    # A retried job sets pending again: GitLab answers 400 "Cannot transition", which is no error.
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning")
    assert [s.status for s in server.statuses(project, HEAD)] == ["pending"]
    assert [r.status for r in server.calls("POST")] == [201, 400]

    forge.set_status(repo, HEAD, "promisebot/plan", "success", "no changes")
    assert [s.status for s in server.statuses(project, HEAD)] == ["success"]

    # A new plan of the same head after a finished one: a new status.
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning again")
    assert [s.status for s in server.statuses(project, HEAD)] == ["success", "pending"]
    body = server.calls("POST")[-1].body
    assert "target_url" not in body  # none given: none sent


def test_status_description_is_cut_to_gitlabs_length(server, forge, repo, project, mr):
    forge.set_status(repo, HEAD, "promisebot/plan", "failure", "x" * 400)
    [status] = server.statuses(project, HEAD)
    assert len(status.description) == 255 and status.description.endswith("…")


def test_status_on_an_unknown_commit(forge, repo, mr):
    with pytest.raises(ForgeError) as caught:
        forge.set_status(repo, "f" * 40, "promisebot/plan", "success", "ok")
    assert caught.value.status == 404 and not caught.value.retryable


# -- permission --------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "role"), [
    (50, "admin"), (40, "maintain"), (30, "write"), (20, "read"), (15, "read"), (10, "read"), (5, "none"),
])
def test_permission_levels(server, forge, repo, project, level, role):
    server.add_member(PATH, "dana", level)
    assert forge.permission(repo, "dana") == role
    users, member = server.calls("GET")
    assert users.raw_path == "/api/v4/users" and users.query["username"] == ["dana"]
    dana = server.user("dana")
    assert member.raw_path == f"/api/v4/projects/{ENCODED}/members/all/{dana.id}"


def test_permission_inherited_from_groups(server, forge, repo, project):
    server.add_member("platform", "erin", 40)  # top group: maintainer
    server.add_member(PATH, "erin", 30)  # the project itself: developer
    server.add_member("platform/infra", "frank", 30)  # subgroup only
    server.add_member("platform/other", "gina", 50)  # a sibling group: nothing here
    assert forge.permission(repo, "erin") == "maintain"
    assert forge.permission(repo, "frank") == "write"
    assert forge.permission(repo, "gina") == "none"


def test_permission_none(server, forge, repo, project):
    server.add_user("henry")  # exists, no membership
    server.add_member(PATH, "ivy", 30, expires_at="2001-01-01")
    server.add_member(PATH, "jack", 30, membership_state="awaiting")
    server.add_member(PATH, "kim", 40)
    server.user("kim").state = "blocked"
    assert forge.permission(repo, "henry") == "none"
    assert forge.permission(repo, "nobody-at-all") == "none"
    assert forge.permission(repo, "ivy") == "none"
    assert forge.permission(repo, "jack") == "none"
    assert forge.permission(repo, "kim") == "none"


# -- project lookup ----------------------------------------------------------------------------


def test_repo_by_path_and_id(server, forge, project):
    by_path = forge.repo(PATH)
    assert by_path == Repo(forge="gitlab", full_name=PATH, clone_url=f"{server.url}/{PATH}.git",
                           default_branch="main", project_id=project.id)
    assert server.calls()[0].raw_path == f"/api/v4/projects/{ENCODED}"
    assert forge.repo(project.id) == by_path
    with pytest.raises(ForgeError) as caught:
        forge.repo("platform/missing")
    assert caught.value.status == 404


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "retry_after", "expected_after"), [
    (500, None, None),
    (502, None, None),
    (503, "12", 12.0),
    (429, "7", 7.0),
])
def test_transient_errors_are_retryable(server, forge, repo, mr, calls, status, retry_after, expected_after):
    server.fail_next(1, status, retry_after=retry_after)
    with pytest.raises(ForgeError) as caught:
        forge.fetch_change(repo, 1)
    error = caught.value
    assert (error.status, error.retryable, error.retry_after) == (status, True, expected_after)
    assert f"HTTP {status}" in str(error)
    # the next call goes through: nothing was retried behind the caller's back
    assert forge.fetch_change(repo, 1).head_sha == HEAD
    assert calls == Counter({("gitlab", status): 1, ("gitlab", 200): 2})


def test_rate_limited_listing(server, forge, repo, mr):
    server.fail_next(1, 429, retry_after=30)
    with pytest.raises(ForgeError) as caught:
        forge.comments(repo, 1)
    assert caught.value.retry_after == 30.0
    assert caught.value.status == 429


def test_wrong_token_is_401_and_never_echoed(server, repo, mr, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "glpat-wrong-token-value-1234"
    with pytest.raises(ForgeError) as caught:
        GitLabForge(wrong, url=server.url).create_comment(repo, 1, "hi")
    assert caught.value.status == 401 and not caught.value.retryable
    assert wrong not in str(caught.value) and wrong not in caplog.text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert server.calls()[0].status == 401


def test_connection_errors_are_retryable(calls, repo):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    forge = GitLabForge(DEFAULT_TOKEN, url=f"http://127.0.0.1:{port}", timeout=5,
                        on_call=lambda forge, code: calls.update([(forge, code)]))
    with pytest.raises(ForgeError) as caught:
        forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning")
    assert (caught.value.status, caught.value.retryable) == (None, True)
    assert DEFAULT_TOKEN not in str(caught.value)
    assert calls == Counter({("gitlab", 0): 1})


def test_retries_option_lets_python_gitlab_retry(server, repo, mr, calls):
    forge = GitLabForge(DEFAULT_TOKEN, url=server.url, retries=3,
                        on_call=lambda forge, code: calls.update([(forge, code)]))
    server.fail_next(2, 502, path_contains="/merge_requests/1")
    server.fail_next(1, 429, retry_after=0, path_contains="/approvals")
    assert forge.fetch_change(repo, 1).head_sha == HEAD
    assert calls == Counter({("gitlab", 502): 2, ("gitlab", 429): 1, ("gitlab", 200): 2})


def test_every_request_carries_the_token_and_is_recorded(server, forge, repo, mr):
    forge.fetch_change(repo, 1)
    forge.create_comment(repo, 1, "x")
    forge.comments(repo, 1)
    forge.set_status(repo, HEAD, "promisebot/plan", "success", "ok")
    forge.permission(repo, "alice")
    assert [r.method for r in server.calls()] == ["GET", "GET", "POST", "GET", "POST", "GET", "GET"]
    assert all(r.headers["PRIVATE-TOKEN"] == DEFAULT_TOKEN for r in server.calls())
    assert all(urlsplit(r.raw_path).path.startswith("/api/v4/") for r in server.calls())


# -- repository, open changes, statuses (startup recovery reads these) -------------------------


def test_repository_is_the_project_by_path(server, forge, project):
    assert forge.repository(PATH) == forge.repo(project.id) == Repo(
        forge="gitlab", full_name=PATH, clone_url=f"{server.url}/{PATH}.git", default_branch="main",
        project_id=project.id)


def test_open_changes_every_page_from_the_list_alone(repo):
    with GitLabServer(max_per_page=4) as small:
        project = small.add_project(PATH)
        for n in range(1, 12):  # 11 MRs: 1 merged, 1 closed, 1 draft, 1 into another branch
            small.add_merge_request(project, sha=f"{n:040x}", base_sha=BASE, author=f"dev{n % 2}", iid=n,
                                    title=f"change {n}", state={4: "merged", 5: "closed"}.get(n, "opened"),
                                    draft=n == 6, target_branch="release" if n == 7 else None)
        changes = GitLabForge(DEFAULT_TOKEN, url=small.url).open_changes(repo)
        lists = small.calls("GET")
    assert not small.errors

    assert [c.number for c in changes] == [1, 2, 3, 6, 7, 8, 9, 10, 11]
    assert changes[0] == Change(number=1, url=f"{small.url}/{PATH}/-/merge_requests/1", state="open",
                                head_sha=f"{1:040x}", base_ref="main", base_sha="", merge_sha="", author="dev1",
                                draft=False, title="change 1", head_repo=PATH, from_fork=False)
    assert changes[3].draft and changes[4].base_ref == "release"
    # 9 open, 4 a page: three pages of the list, no merge request fetched one by one
    assert [r.raw_path for r in lists] == [f"/api/v4/projects/{ENCODED}/merge_requests"] * 3
    assert lists[0].query == {"state": ["opened"], "per_page": ["100"]}
    assert [r.query.get("page", ["1"])[0] for r in lists] == ["1", "2", "3"]


def test_statuses_latest_by_name_mapped_back(server, forge, repo, project, mr):
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning")
    forge.set_status(repo, HEAD, "promisebot/plan", "success", "planned")
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning again")  # a new status; the old retried
    forge.set_status(repo, HEAD, "promisebot/apply", "error", "could not finish")
    forge.set_status(repo, HEAD, "lint", "failure", "2 problems")
    forge.set_status(repo, BASE, "promisebot/apply", "success", "another commit")

    assert forge.statuses(repo, HEAD) == {"promisebot/plan": "pending", "promisebot/apply": "error",
                                          "lint": "failure"}
    forge.set_status(repo, HEAD, "promisebot/plan", "failure", "1 invalid")
    assert forge.statuses(repo, HEAD)["promisebot/plan"] == "failure"
    listing = server.calls("GET")[-1]
    assert listing.raw_path == f"/api/v4/projects/{ENCODED}/repository/commits/{HEAD}/statuses"
    with pytest.raises(ForgeError) as caught:
        forge.statuses(repo, "f" * 40)
    assert caught.value.status == 404


def test_statuses_follow_pagination(repo):
    with GitLabServer(max_per_page=3) as small:
        project = small.add_project(PATH)
        small.add_merge_request(project, sha=HEAD, base_sha=BASE)
        forge = GitLabForge(DEFAULT_TOKEN, url=small.url)
        for i in range(7):
            forge.set_status(repo, HEAD, f"check/{i}", "success", "ok")
        assert forge.statuses(repo, HEAD) == {f"check/{i}": "success" for i in range(7)}
        assert len(small.calls("GET", "/statuses")) == 3
    assert not small.errors


def test_a_fork_merge_requests_head_gets_its_status_with_the_ref(server, forge, repo, project):
    fork_head = "e5" * 20
    server.add_merge_request(project, sha=fork_head, base_sha=BASE, iid=2, from_fork=True)

    # Without a ref GitLab finds no branch holding the commit: 404 "References for commit".
    with pytest.raises(ForgeError) as caught:
        forge.set_status(repo, fork_head, "promisebot/plan", "pending", "planning")
    assert caught.value.status == 404 and "References for commit" in str(caught.value)

    ref = forge.head_ref(2)
    forge.set_status(repo, fork_head, "promisebot/plan", "pending", "planning", ref=ref)
    forge.set_status(repo, fork_head, "promisebot/plan", "success", "planned", ref=ref)
    [status] = server.statuses(project, fork_head)
    assert (status.ref, status.status) == ("refs/merge-requests/2/head", "success")
    posts = server.calls("POST", "/statuses/")
    # The first try without the ref; from then on this commit's statuses carry it at once.
    assert [("ref" in r.body, r.status) for r in posts] == [(False, 404), (False, 404), (True, 201), (True, 201)]
    assert forge.statuses(repo, fork_head) == {"promisebot/plan": "success"}


def test_a_same_project_merge_requests_status_stays_on_its_branch(server, forge, repo, project, mr):
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning", ref=forge.head_ref(1))
    [status] = server.statuses(project, HEAD)
    assert status.ref == "feature"  # the source branch, whose pipeline the MR shows
    [post] = server.calls("POST", "/statuses/")
    assert "ref" not in post.body


# -- reactions, identity, groups, merging (ChatOps) ----------------------------------------------


def test_react_awards_an_emoji_once(server, forge, repo, mr, calls):
    note = server.add_note(mr, "promisebot apply", author="bob")

    forge.react(repo, 1, note.id)  # "eyes"
    forge.react(repo, 1, note.id, "eyes")  # GitLab: 404 "Name has already been taken": done already
    forge.react(repo, 1, note.id, "hooray")

    assert [(a.name, a.user.username) for a in note.awards] == [("eyes", "promisebot"), ("tada", "promisebot")]
    posts = server.calls("POST")
    assert [(r.raw_path, r.body, r.status) for r in posts] == [
        (f"/api/v4/projects/{ENCODED}/merge_requests/1/notes/{note.id}/award_emoji", {"name": "eyes"}, 201),
        (f"/api/v4/projects/{ENCODED}/merge_requests/1/notes/{note.id}/award_emoji", {"name": "eyes"}, 404),
        (f"/api/v4/projects/{ENCODED}/merge_requests/1/notes/{note.id}/award_emoji", {"name": "tada"}, 201)]
    assert calls == Counter({("gitlab", 201): 2, ("gitlab", 404): 1})


def test_react_errors(server, forge, repo, mr):
    with pytest.raises(ValueError):
        forge.react(repo, 1, 1, "tada")  # GitLab's name, not one of base.REACTIONS
    assert server.calls() == []
    with pytest.raises(ForgeError) as caught:
        forge.react(repo, 1, 424242)
    assert caught.value.status == 404 and not caught.value.retryable
    assert "Note Not Found" in str(caught.value) and ":eyes:" in str(caught.value)
    note = server.add_note(mr, "hi")
    server.fail_next(1, 403, path_contains="award_emoji")
    with pytest.raises(ForgeError) as caught:
        forge.react(repo, 1, note.id)
    assert caught.value.status == 403 and not caught.value.retryable
    server.fail_next(1, 502)
    with pytest.raises(ForgeError) as caught:
        forge.react(repo, 1, note.id)
    assert caught.value.status == 502 and caught.value.retryable
    forge.react(repo, 1, note.id)
    assert [a.name for a in note.awards] == ["eyes"]


def test_whoami_is_asked_once(server, forge):
    assert forge.whoami() == "promisebot"
    assert forge.whoami() == "promisebot"
    [get] = server.calls()
    assert (get.method, get.raw_path, get.status) == ("GET", "/api/v4/user", 200)


def test_whoami_errors(server):
    with pytest.raises(ForgeError) as caught:
        GitLabForge("glpat-wrong-token-value-1234", url=server.url).whoami()
    assert caught.value.status == 401 and not caught.value.retryable
    forge = GitLabForge(DEFAULT_TOKEN, url=server.url)
    server.fail_next(1, 500)
    with pytest.raises(ForgeError) as caught:
        forge.whoami()
    assert caught.value.retryable
    assert forge.whoami() == "promisebot"


def test_member_of_a_group_directly_or_inherited(server, forge, repo, project):
    server.add_member("platform", "erin", 30)  # the top group
    server.add_member("platform/sre", "frank", 10)  # a subgroup: guest
    server.add_member("platform/sre", "gina", 5)  # minimal access is no membership
    server.add_member("platform/sre", "hugo", 30, expires_at="2001-01-01")
    server.add_member("platform/sre", "ivy", 30, membership_state="awaiting")
    server.add_member("other", "jack", 50)
    server.add_member(PATH, "kim", 50)  # the project, not the group
    server.add_user("liam")

    got = {user: forge.member_of(repo, user, "platform/sre")
           for user in ["erin", "frank", "gina", "hugo", "ivy", "jack", "kim", "liam", "nobody"]}

    assert got == {"erin": True, "frank": True, "gina": False, "hugo": False, "ivy": False, "jack": False,
                   "kim": False, "liam": False, "nobody": False}
    frank = server.user("frank")
    assert [r.raw_path for r in server.calls("GET")][:2] == [
        "/api/v4/users", f"/api/v4/groups/platform%2Fsre/members/all/{server.user('erin').id}"]
    assert forge.member_of(repo, "frank", "Platform/SRE")  # GitLab paths compare case-insensitively
    assert server.calls("GET")[-1].raw_path == f"/api/v4/groups/Platform%2FSRE/members/all/{frank.id}"
    # A group only a project's namespace names exists too.
    assert forge.member_of(repo, "erin", "platform/infra")


def test_member_of_an_unknown_group_is_an_error(server, forge, repo, project):
    server.add_user("erin")
    with pytest.raises(ForgeError) as caught:
        forge.member_of(repo, "erin", "no/such/group")
    assert caught.value.status == 404 and not caught.value.retryable
    assert "group no/such/group does not exist" in str(caught.value)
    server.add_group("empty")
    assert forge.member_of(repo, "erin", "empty") is False
    server.fail_next(1, 403, path_contains="/groups/")
    with pytest.raises(ForgeError) as caught:
        forge.member_of(repo, "erin", "empty")
    assert caught.value.status == 403 and not caught.value.retryable
    server.fail_next(1, 503, path_contains="/users")
    with pytest.raises(ForgeError) as caught:
        forge.member_of(repo, "erin", "empty")
    assert caught.value.retryable


@pytest.mark.parametrize(("method", "squash"), [("merge", False), ("rebase", False), ("squash", True)])
def test_merge_lands_the_head_it_was_given(server, forge, repo, mr, method, squash):
    server.set_merge_result(mr, merge_commit_sha=MERGE, squash_commit_sha=SQUASH)

    landed = forge.merge(repo, 1, method=method, sha=HEAD)

    assert landed == MERGE  # the merge commit (a squash merge's holds the squashed commit)
    [put] = server.calls("PUT")
    assert (put.raw_path, put.body, put.status) == (f"/api/v4/projects/{ENCODED}/merge_requests/1/merge",
                                                     {"sha": HEAD, "squash": squash}, 200)
    assert len(server.calls()) == 1
    assert mr.state == "merged" and (mr.squash_commit_sha == SQUASH) is squash
    assert forge.fetch_change(repo, 1).merge_sha == MERGE


def test_merge_fast_forward_and_squash_without_merge_commit(server, forge, repo, project, mr):
    server.set_merge_result(mr, merge_commit_sha=None)  # fast-forward: the head itself lands
    assert forge.merge(repo, 1, method="rebase", sha=HEAD) == HEAD
    other = server.add_merge_request(project, sha="e5" * 20, base_sha=BASE, iid=2)
    server.set_merge_result(other, merge_commit_sha=None, squash_commit_sha=SQUASH)
    assert forge.merge(repo, 2, method="squash", sha="e5" * 20) == SQUASH


def test_merge_refused_when_the_head_moved(server, forge, repo, mr):
    with pytest.raises(ForgeError) as caught:
        forge.merge(repo, 1, method="merge", sha="f" * 40)
    assert (caught.value.status, caught.value.retryable) == (409, False)  # not GitLab's lock conflict
    assert "SHA does not match HEAD of source branch" in str(caught.value) and "head moved" in str(caught.value)
    assert mr.state == "opened"


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"detailed_merge_status": "not_approved"}, 405, "Method Not Allowed"),
    ({"draft": True}, 405, "Method Not Allowed"),
    ({"state": "merged"}, 405, "Method Not Allowed"),
    ({"detailed_merge_status": "conflict"}, 422, "Branch cannot be merged"),
])
def test_merge_refused_when_not_mergeable(server, forge, repo, mr, change, status, words):
    for key, value in change.items():
        setattr(mr, key, value)
    with pytest.raises(ForgeError) as caught:
        forge.merge(repo, 1, method="merge", sha=HEAD)
    assert (caught.value.status, caught.value.retryable) == (status, False)
    assert words in str(caught.value) and "!1" in str(caught.value)


def test_merge_errors(server, forge, repo, mr):
    with pytest.raises(ForgeError) as caught:
        forge.merge(repo, 99, method="merge", sha=HEAD)
    assert caught.value.status == 404 and not caught.value.retryable
    server.set_merge_result(mr, status=401, message="401 Unauthorized")  # may not push to the target
    with pytest.raises(ForgeError) as caught:
        forge.merge(repo, 1, method="merge", sha=HEAD)
    assert caught.value.status == 401 and not caught.value.retryable
    server.fail_next(1, 502, method="PUT")
    with pytest.raises(ForgeError) as caught:
        forge.merge(repo, 1, method="merge", sha=HEAD)
    assert caught.value.status == 502 and caught.value.retryable
    with pytest.raises(ValueError):
        forge.merge(repo, 1, method="ff", sha=HEAD)
    with pytest.raises(ValueError):
        forge.merge(repo, 1, method="merge", sha="")
    assert forge.merge(repo, 1, method="merge", sha=HEAD)


@pytest.mark.parametrize(("status", "mergeable", "words"), [
    ("mergeable", True, "mergeable"),
    ("checking", None, "checking"),
    ("unchecked", None, "not checked"),
    ("approvals_syncing", None, "syncing"),
    ("not_approved", False, "approval"),
    ("conflict", False, "conflicts"),
    ("draft_status", False, "draft"),
    ("discussions_not_resolved", False, "discussions"),
    ("need_rebase", False, "rebased"),
    ("blocked_status", False, "blocks"),
    ("merge_request_blocked", False, "blocks"),
    ("some_future_status", False, "some_future_status"),
])
def test_mergeability_of_each_detailed_merge_status(server, forge, repo, mr, status, mergeable, words):
    mr.detailed_merge_status = status
    got = forge.mergeability(repo, 1)
    assert got.mergeable is mergeable and words in got.reason and got.blocked_by == ()
    [get] = server.calls()
    assert get.raw_path == f"/api/v4/projects/{ENCODED}/merge_requests/1"


@pytest.mark.parametrize("status", ["ci_must_pass", "ci_still_running"])
def test_mergeability_lists_the_statuses_that_block(server, forge, repo, project, mr, status):
    mr.detailed_merge_status = status
    forge.set_status(repo, HEAD, "promisebot/plan", "pending", "planning")
    server.add_status(project, HEAD, "test", "failed")
    server.add_status(project, HEAD, "test", "success")  # the retried job passed
    server.add_status(project, HEAD, "lint", "failed", allow_failure=True)  # does not fail the pipeline
    server.add_status(project, HEAD, "deploy", "running")
    server.add_status(project, BASE, "elsewhere", "failed")

    got = forge.mergeability(repo, 1)

    assert got.mergeable is False and got.blocked_by == ("deploy", "promisebot/plan")
    assert "deploy, promisebot/plan" in got.reason
    assert server.calls("GET")[-1].raw_path == f"/api/v4/projects/{ENCODED}/repository/commits/{HEAD}/statuses"


def test_mergeability_closed_merged_and_before_detailed_merge_status(server, forge, repo, project, mr):
    mr.state = "closed"
    assert forge.mergeability(repo, 1) == Mergeability(False, "it is closed")
    mr.state = "merged"
    assert forge.mergeability(repo, 1) == Mergeability(False, "it is already merged")
    with GitLabServer(detailed_merge_status=False) as old:
        p = old.add_project(PATH)
        first = old.add_merge_request(p, sha=HEAD, base_sha=BASE)
        second = old.add_merge_request(p, sha=HEAD, base_sha=BASE)
        second.detailed_merge_status = "conflict"
        third = old.add_merge_request(p, sha=HEAD, base_sha=BASE)
        third.detailed_merge_status = "checking"
        forge = GitLabForge(DEFAULT_TOKEN, url=old.url)
        assert [forge.mergeability(repo, mr.iid).mergeable for mr in (first, second, third)] == [True, False, None]
    assert not old.errors


def test_mergeability_errors(server, forge, repo, mr):
    with pytest.raises(ForgeError) as caught:
        forge.mergeability(repo, 99)
    assert caught.value.status == 404 and not caught.value.retryable
    server.fail_next(1, 500)
    with pytest.raises(ForgeError) as caught:
        forge.mergeability(repo, 1)
    assert caught.value.retryable


# -- the head's project (forks) ----------------------------------------------------------------


def test_forks_are_told_by_their_source_project(server, forge, repo, project, mr):
    fork = server.add_project("mallory/promises")
    server.add_merge_request(project, sha="e5" * 20, base_sha=BASE, iid=2, source_project=fork)
    server.add_merge_request(project, sha="f6" * 20, base_sha=BASE, iid=3, from_fork=True)  # not visible

    fetched = {n: forge.fetch_change(repo, n) for n in (1, 2, 3)}
    listed = {c.number: c for c in forge.open_changes(repo)}

    for changes in (fetched, listed):
        assert [(changes[n].head_repo, changes[n].from_fork) for n in (1, 2, 3)] == [
            (PATH, False), ("mallory/promises", True), ("", True)]
    hidden = project.merge_requests[3].source_project_id
    fork_reads = [(r.raw_path, r.status) for r in server.calls("GET") if r.raw_path.count("/") == 4]
    # Only forks cost a read of their project (one per listing), and an invisible one is no error.
    assert Counter(fork_reads) == Counter({(f"/api/v4/projects/{fork.id}", 200): 2,
                                           (f"/api/v4/projects/{hidden}", 404): 2})
    # Any other failure reading the fork is the call's failure.
    server.fail_next(1, 500, method="GET", path_contains=f"/projects/{fork.id}")
    with pytest.raises(ForgeError) as caught:
        forge.fetch_change(repo, 2)
    assert caught.value.status == 500 and caught.value.retryable and "source project" in str(caught.value)
