"""bot/forges/events.py on the forges' published webhook examples (tests/fixtures/webhooks; its
README says where each file comes from and which cases the tests derive, with `adapted`)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest
from paths import FIXTURES

from bot.errors import PromisebotError
from bot.forges.base import Event, Repo, event_from_json, event_to_json
from bot.forges.events import (
    EventError,
    header,
    parse_github,
    parse_gitlab,
    verify_github,
    verify_gitlab,
)

WEBHOOKS = FIXTURES / "webhooks"
DELETE = object()
ZEROS = "0" * 40

GITHUB_REPO = Repo(forge="github", full_name="Codertocat/Hello-World",
                   clone_url="https://github.com/Codertocat/Hello-World.git", default_branch="master")
GITLAB_MR_REPO = Repo(forge="gitlab", full_name="gitlabhq/gitlab-test",
                      clone_url="http://example.com/gitlabhq/gitlab-test.git", default_branch="master",
                      project_id=1)
GITLAB_EVENTS = {"push": "Push Hook", "tag_push": "Tag Push Hook", "merge_request": "Merge Request Hook",
                 "note": "Note Hook"}


def raw(forge: str, name: str) -> bytes:
    return (WEBHOOKS / forge / name).read_bytes()


def payload(forge: str, name: str) -> dict[str, Any]:
    return json.loads(raw(forge, name))


def adapted(source: dict[str, Any], **changes: object) -> dict[str, Any]:
    """A deep copy of `source` with each dotted path (`__` for `.`) set to its value, or removed
    for DELETE."""
    result = copy.deepcopy(source)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = result
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return result


def github(name: str, **changes: object):
    event_name = name.split(".")[0]
    return parse_github(event_name, "delivery-1", adapted(payload("github", name), **changes))


def gitlab(name: str, **changes: object):
    event_name = GITLAB_EVENTS[name.split(".")[0]]
    return parse_gitlab(event_name, "uuid-1", adapted(payload("gitlab", name), **changes))


def pr_comment(**changes: object) -> dict[str, Any]:
    """GitHub's issue_comment example turned into a comment on a pull request (fixture README)."""
    base = "Codertocat/Hello-World"
    pull_request = {"url": f"https://api.github.com/repos/{base}/pulls/1",
                    "html_url": f"https://github.com/{base}/pull/1",
                    "diff_url": f"https://github.com/{base}/pull/1.diff",
                    "patch_url": f"https://github.com/{base}/pull/1.patch",
                    "merged_at": None}
    return adapted(payload("github", "issue_comment.created.payload.json"), issue__pull_request=pull_request,
                   **changes)


def bot_comment(**changes: object) -> dict[str, Any]:
    """A comment on a pull request by a GitHub App's bot user: no octokit example has one, so the
    PR comment above with the commenter made the bot user octokit's schema describes
    (`common/user.schema.json`: `type` "Bot", a login ending in "[bot]")."""
    return pr_comment(comment__user__login="promisebot[bot]", comment__user__type="Bot", **changes)


def fork_pr(name: str = "pull_request.opened.payload.json", **changes: object) -> dict[str, Any]:
    """A pull request from a fork: the example's head repository renamed to another owner's."""
    document = payload("github", name)
    head_repo = adapted(document["pull_request"]["head"]["repo"], full_name="Mallory/Hello-World",
                        name="Hello-World", fork=True)
    return adapted(document, pull_request__head__repo=head_repo, **changes)


# --- GitHub signatures --------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


BODY = raw("github", "pull_request.opened.payload.json")


def test_github_documented_test_vector():
    # GitHub's "Validating webhook deliveries" page
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    assert verify_github(["It's a Secret to Everybody"], b"Hello, World!", headers) is None
    assert verify_github(["It's a Secret to Everybody"], b"Hello, World?", headers) is not None


def test_github_correct_signature_on_the_raw_body():
    assert verify_github(["s3cret"], BODY, {"X-Hub-Signature-256": sign("s3cret", BODY)}) is None


@pytest.mark.parametrize("name", ["X-Hub-Signature-256", "x-hub-signature-256", "X-HUB-SIGNATURE-256"])
def test_github_header_lookup_is_case_insensitive(name):
    assert verify_github(["s3cret"], BODY, {name: sign("s3cret", BODY)}) is None


def test_github_uppercase_hex_is_the_same_digest():
    signature = sign("s3cret", BODY)
    assert verify_github(["s3cret"], BODY, {"X-Hub-Signature-256": signature.upper().replace("SHA256=", "sha256=")}) is None


@pytest.mark.parametrize("secrets", [["new", "old"], ["old", "new"], ["", "old"]])
def test_github_any_secret_of_a_rotation_list_verifies(secrets):
    assert verify_github(secrets, BODY, {"X-Hub-Signature-256": sign("old", BODY)}) is None


def test_github_wrong_secret_is_refused_without_echoing_the_signature():
    signature = sign("someone-else", BODY)
    reason = verify_github(["s3cret", "older"], BODY, {"X-Hub-Signature-256": signature})
    assert reason is not None and "does not match" in reason
    assert signature not in reason and signature[7:] not in reason


def test_github_tampered_body_is_refused():
    signature = sign("s3cret", BODY)
    tampered = BODY.replace(b'"number": 2', b'"number": 3', 1)
    assert tampered != BODY
    assert verify_github(["s3cret"], tampered, {"X-Hub-Signature-256": signature}) is not None


def test_github_sha1_only_is_refused_as_requiring_sha256():
    sha1 = "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest()
    reason = verify_github(["s3cret"], BODY, {"X-Hub-Signature": sha1})
    assert reason is not None
    assert "SHA-1" in reason and "X-Hub-Signature-256" in reason and "HMAC-SHA256" in reason
    assert sha1 not in reason and sha1[5:] not in reason


def test_github_sha1_alongside_a_valid_sha256_is_fine():
    sha1 = "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest()
    headers = {"X-Hub-Signature": sha1, "X-Hub-Signature-256": sign("s3cret", BODY)}
    assert verify_github(["s3cret"], BODY, headers) is None


def test_github_missing_signature_is_refused():
    reason = verify_github(["s3cret"], BODY, {"X-GitHub-Event": "pull_request"})
    assert reason is not None and "missing X-Hub-Signature-256" in reason


@pytest.mark.parametrize("value", [
    "", "sha256=", "sha256=abc", "sha256=" + "g" * 64, "sha1=" + "a" * 64, "SHA256=" + "a" * 64,
    "sha256=" + "a" * 63, "sha256=" + "a" * 65, "a" * 64,
])
def test_github_malformed_signature_is_refused_without_echo(value):
    reason = verify_github(["s3cret"], BODY, {"X-Hub-Signature-256": value})
    assert reason is not None and "malformed" in reason
    if value not in ("", "sha256="):
        assert value not in reason


@pytest.mark.parametrize("secrets", [[], [""]])
def test_github_without_a_secret_nothing_verifies(secrets):
    # not even a signature made with the empty key
    reason = verify_github(secrets, BODY, {"X-Hub-Signature-256": sign("", BODY)})
    assert reason is not None and "no GitHub webhook secret" in reason


def test_github_header_given_twice_is_refused():
    signature = sign("s3cret", BODY)
    reason = verify_github(["s3cret"], BODY, {"X-Hub-Signature-256": signature, "x-hub-signature-256": signature})
    assert reason is not None and "2 times" in reason and signature not in reason


def test_header_lookup():
    assert header({"X-Gitlab-Event": "Push Hook"}, "x-gitlab-event") == "Push Hook"
    assert header({}, "X-Gitlab-Event") is None


# --- GitLab tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Gitlab-Token", "x-gitlab-token", "X-GITLAB-TOKEN"])
def test_gitlab_right_token(name):
    assert verify_gitlab(["t0ken"], {name: "t0ken"}) is None


def test_gitlab_second_token_of_a_rotation_list():
    assert verify_gitlab(["new", "old"], {"X-Gitlab-Token": "old"}) is None


@pytest.mark.parametrize("token", ["wrong", "t0ke", "t0ken ", "T0KEN", "tøken"])
def test_gitlab_wrong_token_is_refused_without_echo(token):
    reason = verify_gitlab(["t0ken"], {"X-Gitlab-Token": token})
    assert reason is not None and "does not match" in reason and token.strip() not in reason


@pytest.mark.parametrize("headers", [{}, {"X-Gitlab-Token": ""}, {"X-Gitlab-Event": "Push Hook"}])
def test_gitlab_missing_token_is_refused(headers):
    reason = verify_gitlab(["t0ken"], headers)
    assert reason is not None and "missing X-Gitlab-Token" in reason


@pytest.mark.parametrize("secrets", [[], [""]])
def test_gitlab_without_a_secret_nothing_verifies(secrets):
    assert verify_gitlab(secrets, {"X-Gitlab-Token": ""}) is not None
    assert verify_gitlab(secrets, {"X-Gitlab-Token": "anything"}) is not None


# --- GitHub events ------------------------------------------------------------------------------


def test_github_push_to_the_default_branch():
    event = github("push.with-new-branch.payload.json")
    assert event.forge == "github" and event.kind == "push" and event.delivery == "delivery-1"
    assert event.repo == GITHUB_REPO
    assert event.ref == "refs/heads/master"
    assert event.before == ZEROS and event.after == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert event.pusher == "Codertocat"
    assert event.commit_messages == ("Initial commit",)
    assert event.installation_id == 1


def test_github_tag_push_is_ignored():
    event = github("push.payload.json")
    assert event.kind == "ignored" and "tag" in event.reason and "refs/tags/simple-tag" in event.reason
    assert event.repo == GITHUB_REPO


def test_github_branch_deletion_is_ignored():
    event = github("push.payload.json", ref="refs/heads/master")
    assert event.kind == "ignored" and "deleted" in event.reason


def test_github_push_to_another_branch_is_ignored():
    event = github("push.with-new-branch.payload.json", ref="refs/heads/feature")
    assert event.kind == "ignored" and "feature" in event.reason and "default branch master" in event.reason


@pytest.mark.parametrize("name", ["pull_request.opened.payload.json", "pull_request.reopened.payload.json",
                                  "pull_request.ready_for_review.payload.json"])
def test_github_pull_request_opened(name):
    event = github(name)
    assert event.kind == "change_opened"
    assert event.repo == GITHUB_REPO
    assert event.number == 2
    assert event.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert event.base_ref == "master" and event.base_sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert event.merge_sha == ""
    assert event.author == "Codertocat" and event.url == "https://github.com/Codertocat/Hello-World/pull/2"
    assert event.draft is False


def test_github_installation_id():
    assert github("pull_request.opened.payload.json").installation_id == 1
    assert github("pull_request.ready_for_review.payload.json").installation_id is None


def test_github_synchronize_is_an_update():
    event = github("pull_request.synchronize.payload.json")
    assert event.kind == "change_updated" and event.number == 2
    assert event.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_github_closed_without_merge():
    event = github("pull_request.closed.payload.json")
    assert event.kind == "change_closed" and event.number == 2
    assert event.merge_sha == ""  # the example's merge_commit_sha is GitHub's test merge, never applied


def test_github_closed_with_merge():
    event = github("pull_request.closed.payload.json", pull_request__merged=True)
    assert event.kind == "change_merged"
    assert event.merge_sha == "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    assert event.number == 2 and event.base_ref == "master"


def test_github_draft_is_flagged():
    event = github("pull_request.opened.payload.json",
                   pull_request=adapted(payload("github", "pull_request.opened.payload.json")["pull_request"],
                                        draft=True))
    assert event.kind == "change_opened" and event.draft is True


@pytest.mark.parametrize("name", ["pull_request.converted_to_draft.payload.json"])
def test_github_other_pull_request_actions_are_ignored(name):
    event = github(name)
    assert event.kind == "ignored" and "converted_to_draft" in event.reason
    assert event.repo == GITHUB_REPO


def test_github_pull_request_into_another_branch_is_ignored():
    opened = payload("github", "pull_request.opened.payload.json")
    opened["pull_request"]["base"]["ref"] = "release"
    event = parse_github("pull_request", "d", opened)
    assert event.kind == "ignored" and "release" in event.reason and "#2" in event.reason


def test_github_comment_on_a_pull_request():
    event = parse_github("issue_comment", "delivery-1", pr_comment())
    assert event.kind == "comment"
    assert event.repo == GITHUB_REPO
    assert event.number == 1
    assert event.comment_id == 492700400
    assert event.comment_body == "You are totally right! I'll get this fixed right away."
    assert event.commenter == "Codertocat"
    assert event.url == "https://github.com/Codertocat/Hello-World/pull/1"


def test_github_comment_by_a_user_is_not_a_bots():
    event = parse_github("issue_comment", "d", pr_comment())
    assert event.commenter_is_bot is False
    assert event.head_sha == ""  # the payload names no head commit: fetch_change does
    assert event.from_fork is False  # not told by the payload either


def test_github_comment_by_a_bot():
    event = parse_github("issue_comment", "d", bot_comment())
    assert event.kind == "comment" and event.commenter == "promisebot[bot]" and event.commenter_is_bot is True
    assert event.comment_id == 492700400 and event.head_sha == ""


@pytest.mark.parametrize("name", ["pull_request.opened.payload.json", "pull_request.synchronize.payload.json",
                                  "pull_request.closed.payload.json"])
def test_github_pull_request_from_the_repository_itself_is_no_fork(name):
    assert github(name).from_fork is False


def test_github_pull_request_from_a_fork():
    event = parse_github("pull_request", "d", fork_pr())
    assert event.kind == "change_opened" and event.from_fork is True
    merged = parse_github("pull_request", "d", fork_pr("pull_request.closed.payload.json",
                                                      pull_request__merged=True))
    assert merged.kind == "change_merged" and merged.from_fork is True


def test_github_pull_request_whose_fork_was_deleted():
    # GitHub sends head.repo null once the fork is deleted: a fork, of which nothing is known
    event = github("pull_request.synchronize.payload.json", pull_request__head__repo=None)
    assert event.kind == "change_updated" and event.from_fork is True


def test_github_head_repository_names_compare_case_insensitively():
    document = payload("github", "pull_request.opened.payload.json")
    head_repo = adapted(document["pull_request"]["head"]["repo"], full_name="codertocat/hello-world")
    assert parse_github("pull_request", "d", adapted(document, pull_request__head__repo=head_repo)).from_fork is False


def test_github_comment_on_an_issue_is_ignored():
    event = github("issue_comment.created.payload.json")
    assert event.kind == "ignored" and "issue" in event.reason


def test_github_edited_comment_is_ignored():
    event = parse_github("issue_comment", "d", pr_comment(action="edited"))
    assert event.kind == "ignored" and "edited" in event.reason


def test_github_ping_is_ignored():
    event = github("ping.payload.json")
    assert event.kind == "ignored" and "ping" in event.reason
    assert event.repo is not None and event.repo.full_name == "Octocoders/Hello-World"


@pytest.mark.parametrize("event_name", ["star", "", "check_run"])
def test_github_unknown_events_are_ignored(event_name):
    event = parse_github(event_name, "d", payload("github", "ping.payload.json"))
    assert event.kind == "ignored" and event.reason


# --- GitLab events ------------------------------------------------------------------------------


def test_gitlab_push_to_the_default_branch():
    event = gitlab("push.json")
    assert event.forge == "gitlab" and event.kind == "push" and event.delivery == "uuid-1"
    assert event.repo == Repo(forge="gitlab", full_name="mike/diaspora",
                              clone_url="http://example.com/mike/diaspora.git", default_branch="master",
                              project_id=15)
    assert event.ref == "refs/heads/master"
    assert event.before == "95790bf891e76fee5e1747ab589903a6a1f80f22"
    assert event.after == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert event.pusher == "jsmith"
    assert event.commit_messages == (
        "Update Catalan translation to e38cb41.\n\nSee https://gitlab.com/gitlab-org/gitlab for more information",
        "fixed readme")
    assert event.installation_id is None


def test_gitlab_tag_push_is_ignored():
    event = gitlab("tag_push.json")
    assert event.kind == "ignored" and "refs/tags/v1.0.0" in event.reason
    assert event.repo is not None and event.repo.project_id == 1


def test_gitlab_branch_deletion_is_ignored():
    event = gitlab("push.json", after=ZEROS, checkout_sha=None, commits=[])
    assert event.kind == "ignored" and "deleted" in event.reason


def test_gitlab_push_to_another_branch_is_ignored():
    event = gitlab("push.json", ref="refs/heads/feature")
    assert event.kind == "ignored" and "feature" in event.reason


def mr(**attributes: object) -> dict[str, Any]:
    """GitLab's merge request example with object_attributes changed (fixture README)."""
    return adapted(payload("gitlab", "merge_request.json"), **{f"object_attributes__{k}": v
                                                               for k, v in attributes.items()})


def test_gitlab_merge_request_opened():
    event = parse_gitlab("Merge Request Hook", "uuid-1", payload("gitlab", "merge_request.json"))
    assert event.kind == "change_opened"
    assert event.repo == GITLAB_MR_REPO
    assert event.number == 1
    assert event.head_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert event.base_ref == "master"
    assert event.url == "http://example.com/diaspora/merge_requests/1"
    assert event.draft is False and event.merge_sha == ""


def test_gitlab_merge_request_reopened():
    assert parse_gitlab("Merge Request Hook", "u", mr(action="reopen")).kind == "change_opened"


def test_gitlab_update_with_new_commits():
    event = parse_gitlab("Merge Request Hook", "u", mr(action="update",
                                                       oldrev="95790bf891e76fee5e1747ab589903a6a1f80f22"))
    assert event.kind == "change_updated" and event.head_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


def test_gitlab_update_without_oldrev_is_an_edit_and_ignored():
    event = parse_gitlab("Merge Request Hook", "u", mr(action="update"))
    assert event.kind == "ignored" and "oldrev" in event.reason


def test_gitlab_merged():
    sha = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
    event = parse_gitlab("Merge Request Hook", "u", mr(action="merge", state="merged", merge_commit_sha=sha))
    assert event.kind == "change_merged" and event.merge_sha == sha


def test_gitlab_fast_forward_merge_lands_the_head():
    event = parse_gitlab("Merge Request Hook", "u", mr(action="merge", state="merged", merge_commit_sha=None))
    assert event.kind == "change_merged" and event.merge_sha == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"


def test_gitlab_closed():
    event = parse_gitlab("Merge Request Hook", "u", mr(action="close", state="closed"))
    assert event.kind == "change_closed" and event.number == 1


@pytest.mark.parametrize("field", ["draft", "work_in_progress"])
def test_gitlab_draft_is_flagged(field):
    event = parse_gitlab("Merge Request Hook", "u", mr(**{field: True}))
    assert event.kind == "change_opened" and event.draft is True


@pytest.mark.parametrize("action", ["approved", "unapproved", "approval", "unapproval"])
def test_gitlab_other_merge_request_actions_are_ignored(action):
    event = parse_gitlab("Merge Request Hook", "u", mr(action=action))
    assert event.kind == "ignored" and action in event.reason and event.repo == GITLAB_MR_REPO


def test_gitlab_merge_request_into_another_branch_is_ignored():
    event = parse_gitlab("Merge Request Hook", "u", mr(target_branch="release"))
    assert event.kind == "ignored" and "release" in event.reason and "!1" in event.reason


def test_gitlab_comment_on_a_merge_request():
    event = gitlab("note.merge_request.json")
    assert event.kind == "comment"
    assert event.repo == Repo(forge="gitlab", full_name="gitlab-org/gitlab-test",
                              clone_url="http://example.com/gitlab-org/gitlab-test.git",
                              default_branch="master", project_id=5)
    assert event.number == 1
    assert event.comment_id == 1244 and event.comment_body == "This MR needs work."
    assert event.commenter == "root"
    assert event.head_sha == "562e173be03b8ff2efb05345d12df18815438a4b"
    assert event.base_ref == "markdown"


def test_gitlab_comment_flags():
    event = gitlab("note.merge_request.json")
    assert event.commenter_is_bot is False  # GitLab's payload has no bot flag
    assert event.from_fork is False  # merge_request.source_project_id == target_project_id
    assert gitlab("note.merge_request.json", user__bot=True).commenter_is_bot is True
    assert gitlab("note.merge_request.json", merge_request__source_project_id=99).from_fork is True


def test_gitlab_merge_request_from_a_fork():
    assert parse_gitlab("Merge Request Hook", "u", payload("gitlab", "merge_request.json")).from_fork is False
    event = parse_gitlab("Merge Request Hook", "u", mr(source_project_id=99))
    assert event.kind == "change_opened" and event.from_fork is True
    merged = parse_gitlab("Merge Request Hook", "u", mr(action="merge", state="merged", source_project_id=99))
    assert merged.kind == "change_merged" and merged.from_fork is True
    # Without both ids the payload does not tell: no fork assumed
    assert parse_gitlab("Merge Request Hook", "u", mr(source_project_id=DELETE)).from_fork is False


def test_gitlab_comment_on_a_commit_is_ignored():
    event = gitlab("note.commit.json")
    assert event.kind == "ignored" and "Commit" in event.reason


@pytest.mark.parametrize("change, word", [({"object_attributes__action": "update"}, "update"),
                                          ({"object_attributes__system": True}, "system")])
def test_gitlab_edited_and_system_notes_are_ignored(change, word):
    event = gitlab("note.merge_request.json", **change)
    assert event.kind == "ignored" and word in event.reason


def test_gitlab_note_without_action_is_a_new_comment():
    # GitLab before 16.11 sent no object_attributes.action
    assert gitlab("note.merge_request.json", object_attributes__action=DELETE).kind == "comment"


@pytest.mark.parametrize("event_name", ["Pipeline Hook", "System Hook", ""])
def test_gitlab_unknown_events_are_ignored(event_name):
    event = parse_gitlab(event_name, "u", payload("gitlab", "push.json"))
    assert event.kind == "ignored" and event.reason


# --- queued events -------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [
    parse_github("issue_comment", "d1", bot_comment()),
    parse_github("pull_request", "d2", fork_pr()),
    parse_gitlab("Note Hook", "d3", adapted(payload("gitlab", "note.merge_request.json"), user__bot=True,
                                            merge_request__source_project_id=99)),
    parse_gitlab("Merge Request Hook", "d4", mr(source_project_id=99)),
    parse_github("push", "d5", payload("github", "push.with-new-branch.payload.json")),
])
def test_events_round_trip_through_json(event):
    data = json.loads(json.dumps(event_to_json(event)))
    assert event_from_json(data) == event
    assert data["from_fork"] == event.from_fork and data["commenter_is_bot"] == event.commenter_is_bot


def test_a_job_queued_before_the_new_fields_still_loads():
    event = parse_github("issue_comment", "d", bot_comment())
    data = event_to_json(event)
    old = {k: v for k, v in data.items() if k not in ("from_fork", "commenter_is_bot")}
    loaded = event_from_json(old)
    assert loaded == Event(**{**{f: getattr(event, f) for f in Event.__dataclass_fields__},
                              "commenter_is_bot": False, "from_fork": False})


# --- malformed payloads -------------------------------------------------------------------------


@pytest.mark.parametrize("forge, name, change, field", [
    ("github", "push.with-new-branch.payload.json", {"repository": DELETE}, "repository.full_name"),
    ("github", "push.with-new-branch.payload.json", {"repository__clone_url": DELETE}, "repository.clone_url"),
    ("github", "push.with-new-branch.payload.json", {"after": DELETE}, "after"),
    ("github", "push.with-new-branch.payload.json", {"before": None}, "before"),
    ("github", "push.with-new-branch.payload.json", {"commits": "x"}, "commits"),
    ("github", "pull_request.opened.payload.json", {"pull_request__head": DELETE}, "pull_request.head.sha"),
    ("github", "pull_request.opened.payload.json", {"pull_request__number": "2"}, "pull_request.number"),
    ("github", "pull_request.opened.payload.json", {"action": DELETE}, "action"),
    ("github", "pull_request.opened.payload.json", {"installation__id": "1"}, "installation.id"),
    ("github", "pull_request.closed.payload.json", {"pull_request__merged": DELETE}, "pull_request.merged"),
    ("github", "pull_request.closed.payload.json",
     {"pull_request__merged": True, "pull_request__merge_commit_sha": None}, "pull_request.merge_commit_sha"),
    ("gitlab", "push.json", {"project__id": DELETE}, "project.id"),
    ("gitlab", "push.json", {"project__default_branch": None}, "project.default_branch"),
    ("gitlab", "push.json", {"ref": 7}, "ref"),
    ("gitlab", "merge_request.json", {"object_attributes__last_commit": None}, "object_attributes.last_commit.id"),
    ("gitlab", "merge_request.json", {"object_attributes__iid": DELETE}, "object_attributes.iid"),
    ("gitlab", "merge_request.json", {"project": DELETE}, "project.path_with_namespace"),
    ("gitlab", "note.merge_request.json", {"merge_request__iid": DELETE}, "merge_request.iid"),
    ("gitlab", "note.merge_request.json", {"user": DELETE}, "user.username"),
])
def test_missing_or_mistyped_fields_raise_event_error_naming_them(forge, name, change, field):
    with pytest.raises(EventError) as raised:
        (github if forge == "github" else gitlab)(name, **change)
    assert field in str(raised.value)
    assert isinstance(raised.value, PromisebotError)


def test_a_github_comment_missing_its_id():
    comment = pr_comment()
    del comment["comment"]["id"]
    with pytest.raises(EventError, match="comment.id"):
        parse_github("issue_comment", "d", comment)


@pytest.mark.parametrize("body", [[], "push", 3, None])
def test_a_payload_that_is_not_an_object(body):
    with pytest.raises(EventError, match="not an object"):
        parse_github("push", "d", body)
    with pytest.raises(EventError, match="not an object"):
        parse_gitlab("Push Hook", "d", body)


def _paths(node: object, prefix: tuple[str, ...] = ()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:2]):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


GITHUB_CASES = [(name.split(".")[0], payload("github", name))
                for name in sorted(p.name for p in (WEBHOOKS / "github").glob("*.json"))]
GITHUB_CASES += [("pull_request", adapted(payload("github", "pull_request.closed.payload.json"),
                                          pull_request__merged=True)),
                 ("issue_comment", pr_comment()), ("issue_comment", bot_comment()),
                 ("pull_request", fork_pr())]
GITLAB_CASES = [(GITLAB_EVENTS[name.split(".")[0]], payload("gitlab", name))
                for name in sorted(p.name for p in (WEBHOOKS / "gitlab").glob("*.json"))]
GITLAB_CASES += [("Merge Request Hook", mr(action=action, oldrev="95790bf891e76fee5e1747ab589903a6a1f80f22"))
                 for action in ("update", "merge", "close")]
GITLAB_CASES += [("Merge Request Hook", mr(source_project_id=99)),
                 ("Note Hook", adapted(payload("gitlab", "note.merge_request.json"), user__bot=True))]


@pytest.mark.parametrize("forge, event_name, document", [("github", *case) for case in GITHUB_CASES]
                         + [("gitlab", *case) for case in GITLAB_CASES])
def test_no_damage_to_a_payload_escapes_as_anything_but_event_error(forge, event_name, document):
    """Every field of every example (depth 4, first two array items) removed, nulled, or turned
    into a list or a string: the parser returns an Event or raises EventError, nothing else."""
    parse = parse_github if forge == "github" else parse_gitlab
    checked = 0
    for path in _paths(document):
        if len(path) > 4:
            continue
        for replacement in (DELETE, None, [], "x", True):
            damaged = copy.deepcopy(document)
            node = damaged
            for part in path[:-1]:
                node = node[part]
            if replacement is DELETE:
                if isinstance(node, list):
                    continue
                del node[path[-1]]
            else:
                node[path[-1]] = replacement
            try:
                parse(event_name, "d", damaged)
            except EventError:
                pass
            checked += 1
    assert checked > 50
