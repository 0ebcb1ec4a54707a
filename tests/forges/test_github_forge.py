"""GitHubForge through PyGithub over real HTTP to the GitHub stand-in (tests/forge_servers/github.py).

Nothing is patched: every call is a real request the stand-in answers with GitHub's REST shapes,
and the assertions read what the stand-in recorded and holds.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

import github
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from forge_servers.github import GitHubServer

from bot.forges.base import Change, Forge, ForgeError, Mergeability, Repo
from bot.forges.github import COMMENT_LIMIT, GitHubForge

TOKEN = "ghp_standInToken0123456789abcdefABCDEF01"
REPO_NAME = "acme/platform"
APP_ID = 4242
INSTALLATION = 42
MARKER = "<!-- promisebot:plan -->"


def sha(n: int) -> str:
    return f"{n:040x}"


def repo_of(server: GitHubServer) -> Repo:
    return Repo("github", REPO_NAME, f"{server.web_url}/{REPO_NAME}.git", "main")


def _key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return _key_pair()


def _populate(server: GitHubServer) -> None:
    server.add_token(TOKEN, "promisebot")
    server.add_repo(REPO_NAME)
    server.add_pull(REPO_NAME, 7, head_sha=sha(0xA7), base_sha=sha(0xB7), head_ref="request-db", user="alice",
                    title="Request a database", merge_commit_sha=sha(0xC7))


@pytest.fixture
def server():
    with GitHubServer() as srv:
        _populate(srv)
        yield srv


@pytest.fixture
def calls() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def forge(server: GitHubServer, calls: list[tuple[str, int]]) -> GitHubForge:
    return GitHubForge(api_url=server.api_url, token=TOKEN, seconds_between_writes=0.0,
                       on_call=lambda forge, code: calls.append((forge, code)))


def test_it_is_a_forge(forge: GitHubForge) -> None:
    as_forge: Forge = forge
    assert as_forge.name == "github"
    assert forge.head_ref(7) == "refs/pull/7/head"
    assert forge.comment_limit() == COMMENT_LIMIT == 65536


def test_comment_created_found_and_edited(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    server.add_comment(REPO_NAME, 7, "LGTM", user="bob")

    made = forge.create_comment(repo, 7, f"{MARKER}\nplan v1")
    assert made.author == "promisebot" and made.body == f"{MARKER}\nplan v1"

    found = [c for c in forge.comments(repo, 7) if MARKER in c.body]
    assert [c.id for c in found] == [made.id]
    assert [c.author for c in forge.comments(repo, 7)] == ["bob", "promisebot"]

    forge.edit_comment(repo, 7, made.id, f"{MARKER}\nplan v2")
    stored = {c["id"]: c for c in server.comments(REPO_NAME, 7)}
    assert stored[made.id]["body"] == f"{MARKER}\nplan v2"
    assert len(stored) == 2

    post, = server.calls("POST")
    assert (post.route, post.body) == ("/repos/acme/platform/issues/7/comments", {"body": f"{MARKER}\nplan v1"})
    patch, = server.calls("PATCH")
    assert (patch.route, patch.body) == (f"/repos/acme/platform/issues/comments/{made.id}",
                                         {"body": f"{MARKER}\nplan v2"})
    # Lazy objects: no repository or issue fetch, one request per operation.
    assert [(r.method, r.route) for r in server.requests] == [
        ("POST", "/repos/acme/platform/issues/7/comments"),
        ("GET", "/repos/acme/platform/issues/7/comments"),
        ("GET", "/repos/acme/platform/issues/7/comments"),
        ("PATCH", f"/repos/acme/platform/issues/comments/{made.id}"),
    ]
    assert all(r.auth == "token" and r.who == "promisebot" and r.user_agent == "promisebot"
               for r in server.requests)


def test_comment_list_is_paginated(server: GitHubServer, forge: GitHubForge) -> None:
    bodies = [f"comment {i}" for i in range(230)]
    for body in bodies:
        server.add_comment(REPO_NAME, 7, body)
    server.add_comment(REPO_NAME, 7, f"{MARKER}\nlast")  # the bot's comment, on page 3

    comments = forge.comments(repo_of(server), 7)

    assert [c.body for c in comments] == [*bodies, f"{MARKER}\nlast"]
    gets = server.calls("GET")
    assert len(gets) == 3  # 231 comments, 100 a page, following the Link header
    assert gets[0].path == "/repos/acme/platform/issues/7/comments" and gets[0].query == {"per_page": "100"}
    repository_id = server.repo(REPO_NAME).id  # GitHub's Link headers name /repositories/{id}
    assert [r.path for r in gets[1:]] == [f"/repositories/{repository_id}/issues/7/comments"] * 2
    assert [r.query for r in gets[1:]] == [{"per_page": "100", "page": "2"}, {"per_page": "100", "page": "3"}]


def test_statuses(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    forge.set_status(repo, sha(0xA7), "promisebot/plan", "pending", "planning")
    forge.set_status(repo, sha(0xA7), "promisebot/plan", "failure", "x" * 300, target_url="https://ci.example/1")

    pending, failure = server.statuses(REPO_NAME, sha(0xA7))
    assert (pending["context"], pending["state"], pending["description"], pending["target_url"]) == \
        ("promisebot/plan", "pending", "planning", None)
    assert failure["state"] == "failure" and failure["target_url"] == "https://ci.example/1"
    assert len(failure["description"]) == 140 and failure["description"].endswith("…")
    assert [r.route for r in server.calls("POST")] == [f"/repos/acme/platform/statuses/{sha(0xA7)}"] * 2
    assert "target_url" not in server.calls("POST")[0].body

    with pytest.raises(ValueError):
        forge.set_status(repo, sha(0xA7), "promisebot/plan", "done", "?")  # type: ignore[arg-type]
    assert len(server.requests) == 2


def test_fetch_change_open_with_approvals(server: GitHubServer, forge: GitHubForge) -> None:
    for user, state in [("bob", "APPROVED"), ("carol", "CHANGES_REQUESTED"), ("dave", "APPROVED"),
                        ("dave", "COMMENTED"), ("erin", "APPROVED"), ("erin", "CHANGES_REQUESTED"),
                        ("frank", "DISMISSED"), ("gina", "CHANGES_REQUESTED"), ("gina", "APPROVED"),
                        ("hugo", "COMMENTED")]:
        server.add_review(REPO_NAME, 7, user, state)
    server.update_pull(REPO_NAME, 7, draft=True)

    change = forge.fetch_change(repo_of(server), 7)

    assert change.number == 7 and change.state == "open" and change.draft
    assert change.url == f"{server.web_url}/acme/platform/pull/7"
    assert (change.head_sha, change.base_ref, change.base_sha) == (sha(0xA7), "main", sha(0xB7))
    assert change.merge_sha == ""  # an open pull request's merge_commit_sha is only a test merge
    assert change.author == "alice" and change.title == "Request a database"
    assert change.approvers == ("bob", "dave", "gina")
    assert [r.route for r in server.requests] == ["/repos/acme/platform/pulls/7",
                                                  "/repos/acme/platform/pulls/7/reviews"]


def test_fetch_change_merged_and_closed(server: GitHubServer, forge: GitHubForge) -> None:
    server.add_review(REPO_NAME, 7, "bob", "APPROVED")
    server.update_pull(REPO_NAME, 7, state="closed", merged=True, merge_commit_sha=sha(0xD7))
    server.add_pull(REPO_NAME, 9, head_sha=sha(0xA9), base_sha=sha(0xB9), state="closed")

    merged = forge.fetch_change(repo_of(server), 7)
    closed = forge.fetch_change(repo_of(server), 9)

    assert (merged.state, merged.merge_sha, merged.approvers) == ("merged", sha(0xD7), ("bob",))
    assert (closed.state, closed.merge_sha, closed.approvers) == ("closed", "", ())


def test_fetch_change_of_a_missing_pull_request(server: GitHubServer, forge: GitHubForge) -> None:
    with pytest.raises(ForgeError) as err:
        forge.fetch_change(repo_of(server), 99)
    assert err.value.status == 404 and not err.value.retryable and err.value.retry_after is None


def test_permission(server: GitHubServer, forge: GitHubForge) -> None:
    for user, role in [("ann", "admin"), ("max", "maintain"), ("wes", "write"), ("tia", "triage"),
                       ("rae", "read")]:
        server.set_permission(REPO_NAME, user, role)
    server.set_permission(REPO_NAME, "cus", "release-manager", base="write")  # a custom repository role
    server.add_user("nobody")
    repo = repo_of(server)

    got = {user: forge.permission(repo, user) for user in ["ann", "max", "wes", "tia", "rae", "cus", "nobody",
                                                          "no-such-user"]}

    assert got == {"ann": "admin", "max": "maintain", "wes": "write", "tia": "triage", "rae": "read",
                   "cus": "write", "nobody": "none", "no-such-user": "none"}
    assert server.calls("GET")[0].route == "/repos/acme/platform/collaborators/ann/permission"


def test_clone_credentials_with_a_token(server: GitHubServer, forge: GitHubForge) -> None:
    creds = forge.clone_credentials(repo_of(server))
    assert creds is not None
    assert (creds.username, creds.password) == ("x-access-token", TOKEN)
    assert TOKEN not in repr(creds)


def test_a_comment_over_the_limit_is_refused_before_sending(server: GitHubServer, forge: GitHubForge) -> None:
    with pytest.raises(ForgeError, match="over GitHub's limit"):
        forge.create_comment(repo_of(server), 7, "x" * (COMMENT_LIMIT + 1))
    forge.create_comment(repo_of(server), 7, "x" * COMMENT_LIMIT)
    assert len(server.requests) == 1


# -- GitHub App ---------------------------------------------------------------------------------


@pytest.fixture
def app_server(app_key: tuple[str, str]):
    with GitHubServer() as srv:
        _populate(srv)
        srv.add_app(APP_ID, app_key[1], slug="promisebot")
        srv.add_installation(APP_ID, INSTALLATION, [REPO_NAME])
        srv.add_repo("other/repo")
        srv.add_installation(APP_ID, 43, ["other/repo"])
        yield srv


def _app_forge(server: GitHubServer, private_key: str, **kwargs) -> GitHubForge:
    return GitHubForge(api_url=server.api_url, app_id=APP_ID, private_key=private_key,
                       seconds_between_writes=0.0, **kwargs)


def test_app_installation_token_is_fetched_once_and_cached(app_server: GitHubServer,
                                                           app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0]).for_installation(INSTALLATION)
    repo = repo_of(app_server)

    made = forge.create_comment(repo, 7, "hello")
    forge.comments(repo, 7)
    forge.set_status(repo, sha(0xA7), "promisebot/plan", "success", "ok")
    forge.fetch_change(repo, 7)
    creds = forge.clone_credentials(repo)

    grants = app_server.calls("POST", r"/app/installations/\d+/access_tokens")
    assert [(g.route, g.auth, g.who) for g in grants] == [
        (f"/app/installations/{INSTALLATION}/access_tokens", "jwt", f"app:{APP_ID}")]
    others = [r for r in app_server.requests if r not in grants]
    assert others and all(r.auth == "installation" and r.who == f"installation:{INSTALLATION}" for r in others)
    assert made.author == "promisebot[bot]"
    assert creds is not None and creds.username == "x-access-token" and creds.password.startswith("ghs_")
    # The same token machinery, shared by every view of the forge.
    assert forge.app is not None and forge.app.installation_token(INSTALLATION) == creds.password
    assert len(app_server.calls("POST", r"/app/installations/\d+/access_tokens")) == 1


def test_app_calls_are_counted_too(app_server: GitHubServer, app_key: tuple[str, str],
                                   calls: list[tuple[str, int]]) -> None:
    forge = _app_forge(app_server, app_key[0], on_call=lambda forge, code: calls.append((forge, code)))
    forge.comments(repo_of(app_server), 7)  # installation lookup, token, comments
    assert calls == [("github", 200), ("github", 201), ("github", 200)]


def test_a_revoked_installation_token_is_dropped(app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0], installation_id=INSTALLATION)
    forge.comments(repo_of(app_server), 7)
    app_server.revoke_installation_tokens()
    with pytest.raises(ForgeError) as err:
        forge.comments(repo_of(app_server), 7)
    assert err.value.status == 401 and not err.value.retryable
    forge.comments(repo_of(app_server), 7)  # the job's retry gets a fresh token
    assert len(app_server.calls("POST", r"/app/installations/\d+/access_tokens")) == 2


def test_app_token_is_replaced_near_its_expiry(app_key: tuple[str, str]) -> None:
    with GitHubServer(installation_token_ttl=240) as srv:  # under the 5 minute margin: never reused
        _populate(srv)
        srv.add_app(APP_ID, app_key[1])
        srv.add_installation(APP_ID, INSTALLATION, [REPO_NAME])
        forge = _app_forge(srv, app_key[0], installation_id=INSTALLATION)
        forge.comments(repo_of(srv), 7)
        forge.comments(repo_of(srv), 7)
        assert len(srv.calls("POST", r"/app/installations/\d+/access_tokens")) == 2


def test_app_token_cache_is_shared_by_concurrent_jobs(app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0])
    errors: list[BaseException] = []

    def job() -> None:
        try:
            forge.for_installation(INSTALLATION).comments(repo_of(app_server), 7)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(app_server.calls("POST", r"/app/installations/\d+/access_tokens")) == 1
    assert len(app_server.calls("GET", r"/repos/acme/platform/issues/7/comments")) == 8


def test_app_without_installation_id_looks_up_the_repository_installation(
        app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0])
    forge.comments(repo_of(app_server), 7)
    forge.comments(repo_of(app_server), 7)

    lookup, = app_server.calls("GET", r"/repos/acme/platform/installation")
    assert lookup.auth == "jwt"
    grant, = app_server.calls("POST", r"/app/installations/\d+/access_tokens")
    assert grant.route == f"/app/installations/{INSTALLATION}/access_tokens"


def test_an_installation_token_only_reaches_its_repositories(app_server: GitHubServer,
                                                            app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0]).for_installation(43)  # installed on other/repo only
    with pytest.raises(ForgeError) as err:
        forge.comments(repo_of(app_server), 7)
    assert err.value.status == 404


def test_a_jwt_signed_with_another_key_is_refused(app_server: GitHubServer) -> None:
    wrong_private, _ = _key_pair()
    forge = _app_forge(app_server, wrong_private, installation_id=INSTALLATION)
    with pytest.raises(ForgeError) as err:
        forge.comments(repo_of(app_server), 7)
    assert err.value.status == 401 and not err.value.retryable
    assert "PRIVATE KEY" not in str(err.value)
    grant, = app_server.requests
    assert grant.auth == "invalid" and grant.status == 401


def test_a_broken_private_key_is_refused_without_echoing_it(app_server: GitHubServer,
                                                           app_key: tuple[str, str]) -> None:
    broken = app_key[0].replace("A", "B", 40)[:-200]
    with pytest.raises(ValueError) as err:
        _app_forge(app_server, broken)
    assert broken[40:80] not in str(err.value) and "PRIVATE KEY" not in str(err.value)
    # An escaped newline form (as an environment variable may hold it) works.
    _app_forge(app_server, app_key[0].replace("\n", "\\n")).for_installation(INSTALLATION).comments(
        repo_of(app_server), 7)


def test_the_stand_in_answers_pygithub_in_githubs_shapes(server: GitHubServer) -> None:
    """PyGithub (eager, as its users call it) reads the stand-in's repository and rate limit."""
    with github.Github(auth=github.Auth.Token(TOKEN), base_url=server.api_url, retry=None) as gh:
        repo = gh.get_repo(REPO_NAME)
        assert (repo.full_name, repo.default_branch, repo.private) == (REPO_NAME, "main", True)
        pull = repo.get_pull(7)
        assert (pull.head.ref, pull.base.repo.full_name, pull.user.login) == ("request-db", REPO_NAME, "alice")
        assert gh.get_rate_limit().resources.core.remaining == 5000
    assert [r.route for r in server.requests] == ["/repos/acme/platform", "/repos/acme/platform/pulls/7",
                                                  "/rate_limit"]


# -- GitHub Enterprise Server -------------------------------------------------------------------


def test_github_enterprise_api_path(app_key: tuple[str, str]) -> None:
    with GitHubServer(prefix="/api/v3") as ghe:
        _populate(ghe)
        for i in range(120):
            ghe.add_comment(REPO_NAME, 7, f"c{i}")
        forge = GitHubForge(api_url=ghe.api_url + "/", token=TOKEN, seconds_between_writes=0.0)
        assert forge.api_url == f"http://127.0.0.1:{ghe.port}/api/v3"
        repo = repo_of(ghe)

        made = forge.create_comment(repo, 7, "hi")
        assert len(forge.comments(repo, 7)) == 121
        forge.edit_comment(repo, 7, made.id, "hi again")
        forge.set_status(repo, sha(0xA7), "promisebot/plan", "success", "ok")
        forge.fetch_change(repo, 7)

        assert len(ghe.requests) == 7
        assert all(r.path.startswith("/api/v3/") and r.status in (200, 201) for r in ghe.requests)
        assert ghe.comments(REPO_NAME, 7)[-1]["body"] == "hi again"

        # The API lives under /api/v3 only: the bare host is not the API.
        with pytest.raises(ForgeError) as err:
            GitHubForge(api_url=ghe.web_url, token=TOKEN).comments(repo, 7)
        assert err.value.status == 404


def test_api_url_and_credentials_are_checked() -> None:
    with pytest.raises(ValueError):
        GitHubForge(api_url="ftp://example.com", token=TOKEN)
    with pytest.raises(ValueError):
        GitHubForge(api_url="https://user:pw@example.com/api/v3", token=TOKEN)
    with pytest.raises(ValueError):
        GitHubForge()
    with pytest.raises(ValueError):
        GitHubForge(token=TOKEN, app_id=1, private_key="x")
    with pytest.raises(ValueError):
        GitHubForge(app_id=1)
    with pytest.raises(ValueError):
        GitHubForge(token=TOKEN, installation_id=3)


# -- errors ---------------------------------------------------------------------------------------


def test_bad_credentials_are_not_retryable(server: GitHubServer) -> None:
    forge = GitHubForge(api_url=server.api_url, token="ghp_wrongToken000000000000000000000000000")
    with pytest.raises(ForgeError) as err:
        forge.comments(repo_of(server), 7)
    assert (err.value.status, err.value.retryable, err.value.retry_after) == (401, False, None)
    assert "Bad credentials" in str(err.value)
    assert "ghp_wrongToken" not in str(err.value)
    assert server.requests[0].auth == "invalid"


@pytest.mark.parametrize(("status", "retry_after", "expected_after"), [
    (502, None, None),
    (500, None, None),
    (503, 5, 5.0),
    (429, 7, 7.0),
])
def test_server_errors_and_secondary_limits_are_retryable(server: GitHubServer, forge: GitHubForge, status: int,
                                                          retry_after: int | None,
                                                          expected_after: float | None) -> None:
    server.fail_next(1, status, retry_after=retry_after)
    with pytest.raises(ForgeError) as err:
        forge.create_comment(repo_of(server), 7, "plan")
    assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, True, expected_after)
    assert TOKEN not in str(err.value)
    # Not retried by PyGithub: one request, and the next call goes through.
    assert len(server.requests) == 1
    forge.create_comment(repo_of(server), 7, "plan")
    assert [c["body"] for c in server.comments(REPO_NAME, 7)] == ["plan"]


def test_primary_rate_limit_waits_until_the_reset(server: GitHubServer, forge: GitHubForge) -> None:
    server.fail_next(1, 403, retry_after=120)
    with pytest.raises(ForgeError) as err:
        forge.fetch_change(repo_of(server), 7)
    assert err.value.status == 403 and err.value.retryable
    assert err.value.retry_after is not None and 115 <= err.value.retry_after <= 122


def test_forbidden_without_rate_limit_is_not_retryable(server: GitHubServer, forge: GitHubForge) -> None:
    server.fail_next(1, 403, rate_limited=False)  # a permission problem: retrying will not help
    with pytest.raises(ForgeError) as err:
        forge.create_comment(repo_of(server), 7, "plan")
    assert (err.value.status, err.value.retryable, err.value.retry_after) == (403, False, None)
    assert "Resource not accessible" in str(err.value)


def test_network_errors_are_retryable_and_counted(calls: list[tuple[str, int]]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forge = GitHubForge(api_url=f"http://127.0.0.1:{port}", token=TOKEN, timeout=5,
                        on_call=lambda forge, code: calls.append((forge, code)))
    started = time.monotonic()
    with pytest.raises(ForgeError) as err:
        forge.comments(Repo("github", REPO_NAME, "", "main"), 7)
    assert time.monotonic() - started < 5  # refused at once, no retries
    assert (err.value.status, err.value.retryable) == (None, True)
    assert TOKEN not in str(err.value) and err.value.__cause__ is None
    assert calls == [("github", 0)]


def test_every_response_is_counted_by_status(server: GitHubServer, forge: GitHubForge,
                                             calls: list[tuple[str, int]]) -> None:
    for i in range(150):
        server.add_comment(REPO_NAME, 7, f"c{i}")
    repo = repo_of(server)
    server.fail_next(1, 502)
    with pytest.raises(ForgeError):
        forge.comments(repo, 7)
    forge.comments(repo, 7)  # two pages
    forge.create_comment(repo, 7, "plan")
    forge.permission(repo, "no-such-user")

    assert Counter(calls) == Counter({("github", 200): 2, ("github", 201): 1, ("github", 502): 1,
                                      ("github", 404): 1})
    assert Counter(calls) == Counter(("github", r.status) for r in server.requests)


def test_a_failing_metrics_callback_does_not_break_calls(server: GitHubServer) -> None:
    def broken(forge: str, code: int) -> None:
        raise RuntimeError("metrics down")

    forge = GitHubForge(api_url=server.api_url, token=TOKEN, on_call=broken)
    assert forge.comments(repo_of(server), 7) == []


# -- repository, open changes, statuses (startup recovery reads these) -------------------------


def test_repository(server: GitHubServer, forge: GitHubForge) -> None:
    found = forge.repository(REPO_NAME)
    assert found == Repo("github", REPO_NAME, f"{server.web_url}/{REPO_NAME}.git", "main")
    assert [(r.method, r.route) for r in server.requests] == [("GET", "/repos/acme/platform")]
    with pytest.raises(ForgeError) as err:
        forge.repository("acme/missing")
    assert err.value.status == 404 and not err.value.retryable


def test_repository_with_an_app_and_no_installation_id(app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    assert _app_forge(app_server, app_key[0]).repository(REPO_NAME).default_branch == "main"
    assert [r.route for r in app_server.requests] == [
        "/repos/acme/platform/installation", f"/app/installations/{INSTALLATION}/access_tokens",
        "/repos/acme/platform"]


def test_open_changes_every_page_from_the_list_alone(server: GitHubServer, forge: GitHubForge) -> None:
    for n in range(10, 215):  # with #7: 206 pull requests, 3 closed, 2 into another branch
        server.add_pull(REPO_NAME, n, head_sha=sha(0xA000 + n), base_sha=sha(0xB000), user=f"dev{n % 3}",
                        state="closed" if n % 70 == 0 else "open", draft=n == 11,
                        base_ref="release" if n in (12, 13) else "main")

    changes = forge.open_changes(repo_of(server))

    assert [c.number for c in changes] == [7, *(n for n in range(10, 215) if n % 70 != 0)]
    first, eleventh, twelfth = changes[0], changes[2], changes[3]
    assert first == Change(number=7, url=f"{server.web_url}/acme/platform/pull/7", state="open",
                           head_sha=sha(0xA7), base_ref="main", base_sha=sha(0xB7), merge_sha="", author="alice",
                           draft=False, title="Request a database", head_repo=REPO_NAME, from_fork=False)
    assert eleventh.draft and twelfth.base_ref == "release"
    gets = server.calls("GET")
    # 203 open of 206, 100 a page: three pages of the list, and no pull request fetched one by one.
    assert [r.route for r in gets] == ["/repos/acme/platform/pulls"] * 3
    assert gets[0].query == {"state": "open", "per_page": "100"}
    assert all(r.status == 200 for r in gets)


def test_open_changes_of_a_repository_without_any(server: GitHubServer, forge: GitHubForge) -> None:
    server.update_pull(REPO_NAME, 7, state="closed")
    assert forge.open_changes(repo_of(server)) == []


def test_statuses_latest_per_context_over_pages(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    head = sha(0xA7)
    forge.set_status(repo, head, "promisebot/plan", "pending", "planning")
    for i in range(150):  # another integration's statuses push the first ones to page 2
        forge.set_status(repo, head, f"ci/{i % 3}", "success" if i % 2 else "failure", f"run {i}")
    forge.set_status(repo, sha(0xB7), "promisebot/apply", "success", "another commit")

    # the last of ci/0, ci/1, ci/2: runs 147, 148, 149
    assert forge.statuses(repo, head) == {"promisebot/plan": "pending", "ci/0": "success", "ci/1": "failure",
                                          "ci/2": "success"}
    listed = server.calls("GET")
    repository_id = server.repo(REPO_NAME).id
    assert [r.path for r in listed] == [f"/repos/acme/platform/commits/{head}/statuses",
                                        f"/repositories/{repository_id}/commits/{head}/statuses"]  # 151: 2 pages
    forge.set_status(repo, head, "promisebot/plan", "success", "planned")
    assert forge.statuses(repo, head)["promisebot/plan"] == "success"
    assert forge.statuses(repo, sha(0xC7)) == {}


def test_set_status_sends_no_ref(server: GitHubServer, forge: GitHubForge) -> None:
    forge.set_status(repo_of(server), sha(0xA7), "promisebot/plan", "pending", "planning",
                     ref="refs/pull/7/head")
    post, = server.calls("POST")
    assert post.body == {"state": "pending", "description": "planning", "context": "promisebot/plan"}


# -- reactions, identity, teams, merging (ChatOps) ---------------------------------------------


def test_react_adds_one_reaction_and_again_is_fine(server: GitHubServer, forge: GitHubForge,
                                                   calls: list[tuple[str, int]]) -> None:
    comment_id = server.add_comment(REPO_NAME, 7, "promisebot apply", user="bob")
    repo = repo_of(server)

    forge.react(repo, 7, comment_id)  # "eyes" by default
    forge.react(repo, 7, comment_id, "eyes")  # GitHub: 200, the reaction exists
    forge.react(repo, 7, comment_id, "+1")

    assert [(r["content"], r["user"]) for r in server.reactions(REPO_NAME, comment_id)] == [
        ("eyes", "promisebot"), ("+1", "promisebot")]
    posts = server.calls("POST")
    assert [(r.route, r.body, r.status) for r in posts] == [
        (f"/repos/acme/platform/issues/comments/{comment_id}/reactions", {"content": "eyes"}, 201),
        (f"/repos/acme/platform/issues/comments/{comment_id}/reactions", {"content": "eyes"}, 200),
        (f"/repos/acme/platform/issues/comments/{comment_id}/reactions", {"content": "+1"}, 201)]
    assert len(server.requests) == 3  # lazy: no issue or comment fetched first
    assert calls == [("github", 201), ("github", 200), ("github", 201)]


def test_react_errors(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    with pytest.raises(ValueError, match="unknown reaction"):
        forge.react(repo, 7, 1, "thumbsup")  # type: ignore[arg-type]
    assert server.requests == []
    with pytest.raises(ForgeError) as err:
        forge.react(repo, 7, 424242)
    assert err.value.status == 404 and not err.value.retryable
    assert "reacting eyes to comment 424242 on #7" in str(err.value)
    comment_id = server.add_comment(REPO_NAME, 7, "hi")
    server.fail_next(1, 403, rate_limited=False)
    with pytest.raises(ForgeError) as err:
        forge.react(repo, 7, comment_id)
    assert err.value.status == 403 and not err.value.retryable and "Resource not accessible" in str(err.value)
    server.fail_next(1, 502)
    with pytest.raises(ForgeError) as err:
        forge.react(repo, 7, comment_id)
    assert err.value.status == 502 and err.value.retryable
    forge.react(repo, 7, comment_id)
    assert [r["content"] for r in server.reactions(REPO_NAME, comment_id)] == ["eyes"]


def test_whoami_with_a_token_is_asked_once(server: GitHubServer, forge: GitHubForge) -> None:
    assert forge.whoami() == "promisebot"
    assert forge.whoami() == "promisebot"
    assert [(r.method, r.route, r.status) for r in server.requests] == [("GET", "/user", 200)]


def test_whoami_errors_are_forge_errors(server: GitHubServer) -> None:
    forge = GitHubForge(api_url=server.api_url, token="ghp_wrongToken000000000000000000000000000")
    with pytest.raises(ForgeError) as err:
        forge.whoami()
    assert err.value.status == 401 and not err.value.retryable and "authenticated user" in str(err.value)
    good = GitHubForge(api_url=server.api_url, token=TOKEN)
    server.fail_next(1, 500)
    with pytest.raises(ForgeError) as err:
        good.whoami()
    assert err.value.status == 500 and err.value.retryable
    assert good.whoami() == "promisebot"  # a failure is not cached


def test_whoami_of_an_app_is_its_bot_user(app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    forge = _app_forge(app_server, app_key[0])
    view = forge.for_installation(INSTALLATION)
    assert view.whoami() == "promisebot[bot]"
    assert forge.whoami() == "promisebot[bot]"  # shared by every installation view
    made = view.create_comment(repo_of(app_server), 7, "plan")
    assert made.author == view.whoami()  # what the comments it writes say
    app, = app_server.calls("GET", "/app")
    assert app.auth == "jwt" and app.status == 200
    assert app_server.calls("GET", "/user") == []  # an installation token cannot read /user


def test_member_of_a_team(server: GitHubServer, forge: GitHubForge) -> None:
    server.add_team("acme", "sre", members=["bob"])
    server.set_team_membership("acme", "sre", "carol", role="maintainer")
    server.set_team_membership("acme", "sre", "dave", state="pending")
    server.add_user("erin")
    repo = repo_of(server)

    got = {user: forge.member_of(repo, user, "acme/sre") for user in ["bob", "carol", "dave", "erin", "nobody"]}

    assert got == {"bob": True, "carol": True, "dave": False, "erin": False, "nobody": False}
    assert server.calls("GET")[0].route == "/orgs/acme/teams/sre/memberships/bob"
    # A non-member's 404 is told from a missing team by reading the team.
    assert [r.route for r in server.calls("GET") if r.status == 200][-1] == "/orgs/acme/teams/sre"


def test_member_of_an_unknown_team_is_an_error(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    with pytest.raises(ForgeError) as err:
        forge.member_of(repo, "bob", "acme/no-such-team")
    assert err.value.status == 404 and not err.value.retryable
    assert "team acme/no-such-team does not exist" in str(err.value)
    with pytest.raises(ValueError):
        forge.member_of(repo, "bob", "sre")
    server.add_team("acme", "sre", members=["bob"])
    server.fail_next(1, 403, rate_limited=False)
    with pytest.raises(ForgeError) as err:
        forge.member_of(repo, "bob", "acme/sre")
    assert err.value.status == 403 and not err.value.retryable
    server.fail_next(1, 503)
    with pytest.raises(ForgeError) as err:
        forge.member_of(repo, "bob", "acme/sre")
    assert err.value.retryable


def test_member_of_with_an_installation_token(app_server: GitHubServer, app_key: tuple[str, str]) -> None:
    app_server.add_team("acme", "sre", members=["bob"])
    forge = _app_forge(app_server, app_key[0]).for_installation(INSTALLATION)
    assert forge.member_of(repo_of(app_server), "bob", "acme/sre")
    assert not forge.member_of(repo_of(app_server), "carol", "acme/sre")


def test_merge_lands_the_head_it_was_given(server: GitHubServer, forge: GitHubForge) -> None:
    server.set_merge_result(REPO_NAME, 7, sha=sha(0xE7))

    landed = forge.merge(repo_of(server), 7, method="squash", sha=sha(0xA7))

    assert landed == sha(0xE7)
    put, = server.calls("PUT")
    assert (put.route, put.body, put.status) == ("/repos/acme/platform/pulls/7/merge",
                                                 {"merge_method": "squash", "sha": sha(0xA7)}, 200)
    assert len(server.requests) == 1  # the pull request is not read first
    pull = server.repo(REPO_NAME).pulls[7]
    assert (pull.state, pull.merged, pull.merge_commit_sha) == ("closed", True, sha(0xE7))
    merged = forge.fetch_change(repo_of(server), 7)
    assert (merged.state, merged.merge_sha) == ("merged", sha(0xE7))


@pytest.mark.parametrize("method", ["merge", "rebase"])
def test_merge_methods_are_sent_as_given(server: GitHubServer, forge: GitHubForge, method: str) -> None:
    landed = forge.merge(repo_of(server), 7, method=method, sha=sha(0xA7))  # type: ignore[arg-type]
    assert len(landed) == 40 and server.calls("PUT")[0].body["merge_method"] == method


def test_merge_refused_when_the_head_moved(server: GitHubServer, forge: GitHubForge) -> None:
    with pytest.raises(ForgeError) as err:
        forge.merge(repo_of(server), 7, method="merge", sha=sha(0xAA))
    assert (err.value.status, err.value.retryable) == (409, False)
    assert "Head branch was modified" in str(err.value) and "#7" in str(err.value)
    assert server.repo(REPO_NAME).pulls[7].state == "open"


@pytest.mark.parametrize(("fields", "message"), [
    ({"mergeable": False, "mergeable_state": "dirty"}, "Pull Request is not mergeable"),
    ({"mergeable_state": "blocked"}, "At least 1 approving review is required"),
    ({"state": "closed"}, "Pull Request is not mergeable"),
])
def test_merge_refused_when_not_mergeable(server: GitHubServer, forge: GitHubForge, fields: dict,
                                          message: str) -> None:
    server.update_pull(REPO_NAME, 7, **fields)
    with pytest.raises(ForgeError) as err:
        forge.merge(repo_of(server), 7, method="merge", sha=sha(0xA7))
    assert (err.value.status, err.value.retryable) == (405, False)
    assert message in str(err.value)


def test_merge_errors(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    with pytest.raises(ForgeError) as err:
        forge.merge(repo, 99, method="merge", sha=sha(0xA7))
    assert err.value.status == 404 and not err.value.retryable
    server.set_merge_result(REPO_NAME, 7, status=403, message="Resource not accessible by integration")
    with pytest.raises(ForgeError) as err:
        forge.merge(repo, 7, method="merge", sha=sha(0xA7))
    assert err.value.status == 403 and not err.value.retryable
    server.fail_next(1, 502)
    with pytest.raises(ForgeError) as err:
        forge.merge(repo, 7, method="merge", sha=sha(0xA7))
    assert err.value.status == 502 and err.value.retryable
    with pytest.raises(ValueError):
        forge.merge(repo, 7, method="fast-forward", sha=sha(0xA7))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        forge.merge(repo, 7, method="merge", sha="")
    assert forge.merge(repo, 7, method="merge", sha=sha(0xA7))  # nothing above merged it


def test_mergeability_states(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    expected = {
        "clean": (True, "mergeable"), "unstable": (True, "not successful"), "has_hooks": (True, "hooks"),
        "dirty": (False, "conflicts"), "behind": (False, "up to date"), "draft": (False, "draft"),
        "unknown": (None, "still computing"),
    }
    for state, (mergeable, words) in expected.items():
        server.update_pull(REPO_NAME, 7, mergeable_state=state,
                           mergeable=None if state == "unknown" else state != "dirty")
        got = forge.mergeability(repo, 7)
        assert got.mergeable is mergeable and words in got.reason and got.blocked_by == (), state
    assert {r.route for r in server.requests} == {"/repos/acme/platform/pulls/7"}  # one call each

    server.update_pull(REPO_NAME, 7, mergeable=None, mergeable_state="clean")  # still computing
    assert forge.mergeability(repo, 7).mergeable is None
    server.update_pull(REPO_NAME, 7, mergeable=True, draft=True)
    assert forge.mergeability(repo, 7) == Mergeability(False, "it is a draft")
    server.update_pull(REPO_NAME, 7, draft=False, state="closed", merged=True)
    assert forge.mergeability(repo, 7) == Mergeability(False, "it is already merged")


def test_mergeability_blocked_lists_what_is_not_successful(server: GitHubServer, forge: GitHubForge) -> None:
    repo = repo_of(server)
    head = sha(0xA7)
    server.update_pull(REPO_NAME, 7, mergeable_state="blocked")
    forge.set_status(repo, head, "promisebot/plan", "pending", "planning")
    forge.set_status(repo, head, "ci/lint", "failure", "2 problems")
    forge.set_status(repo, head, "ci/lint", "success", "fixed")  # the latest counts
    server.add_check_run(REPO_NAME, head, "build", status="in_progress")
    server.add_check_run(REPO_NAME, head, "test", conclusion="failure")
    server.add_check_run(REPO_NAME, head, "test", conclusion="success")  # re-run: the latest counts
    server.add_check_run(REPO_NAME, head, "docs", conclusion="skipped")
    server.add_check_run(REPO_NAME, head, "scan", conclusion="neutral")
    server.add_check_run(REPO_NAME, head, "e2e", conclusion="timed_out")
    server.add_check_run(REPO_NAME, sha(0xB7), "other-commit", conclusion="failure")
    server.requests.clear()

    got = forge.mergeability(repo, 7)

    assert got.mergeable is False and got.blocked_by == ("build", "e2e", "promisebot/plan")
    assert "blocked by branch protection" in got.reason and "promisebot/plan" in got.reason
    assert [r.route for r in server.requests] == [
        "/repos/acme/platform/pulls/7", f"/repos/acme/platform/commits/{head}/statuses",
        f"/repos/acme/platform/commits/{head}/check-runs"]

    # Blocked with every status green: reviews (which REST does not show) block it.
    forge.set_status(repo, head, "promisebot/plan", "success", "planned")
    server.add_check_run(REPO_NAME, head, "build", conclusion="success")
    server.add_check_run(REPO_NAME, head, "e2e", conclusion="success")
    got = forge.mergeability(repo, 7)
    assert got.mergeable is False and got.blocked_by == () and "reviews" in got.reason


def test_mergeability_errors(server: GitHubServer, forge: GitHubForge) -> None:
    with pytest.raises(ForgeError) as err:
        forge.mergeability(repo_of(server), 99)
    assert err.value.status == 404 and not err.value.retryable
    server.fail_next(1, 500)
    with pytest.raises(ForgeError) as err:
        forge.mergeability(repo_of(server), 7)
    assert err.value.retryable
    server.update_pull(REPO_NAME, 7, mergeable_state="blocked")
    server.fail_next(1, 403, rate_limited=False, path_contains="check-runs")
    with pytest.raises(ForgeError) as err:
        forge.mergeability(repo_of(server), 7)
    assert err.value.status == 403 and "check runs" in str(err.value)


# -- the head's repository (forks) ---------------------------------------------------------------


def test_forks_are_told_by_their_head_repository(server: GitHubServer, forge: GitHubForge) -> None:
    server.add_pull(REPO_NAME, 8, head_sha=sha(0xA8), base_sha=sha(0xB7), head_repo="mallory/platform")
    server.add_pull(REPO_NAME, 9, head_sha=sha(0xA9), base_sha=sha(0xB7), head_repo=None)  # fork deleted
    repo = repo_of(server)

    fetched = {n: forge.fetch_change(repo, n) for n in (7, 8, 9)}
    listed = {c.number: c for c in forge.open_changes(repo)}

    for changes in (fetched, listed):
        assert [(changes[n].head_repo, changes[n].from_fork) for n in (7, 8, 9)] == [
            (REPO_NAME, False), ("mallory/platform", True), ("", True)]


def test_new_calls_under_the_enterprise_api_path() -> None:
    with GitHubServer(prefix="/api/v3") as ghe:
        _populate(ghe)
        ghe.add_team("acme", "sre", members=["bob"])
        comment_id = ghe.add_comment(REPO_NAME, 7, "apply")
        forge = GitHubForge(api_url=ghe.api_url, token=TOKEN, seconds_between_writes=0.0)
        repo = repo_of(ghe)

        assert forge.whoami() == "promisebot"
        assert forge.member_of(repo, "bob", "acme/sre")
        forge.react(repo, 7, comment_id)
        assert forge.mergeability(repo, 7).mergeable is True
        assert forge.merge(repo, 7, method="merge", sha=sha(0xA7))

        assert all(r.path.startswith("/api/v3/") and r.status in (200, 201) for r in ghe.requests)
        assert len(ghe.requests) == 5
