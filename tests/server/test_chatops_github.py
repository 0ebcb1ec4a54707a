"""ChatOps end to end on GitHub: comments (GitHub's published issue_comment example) into the
real flask app over HTTP, the embedded default's queue, PyGithub against the GitHub stand-in,
real Git repositories; pipelines through the fake runner. Every command allowed and denied,
fork and non-writer trust, the apply requirements unmet then met, Destination locks."""

from __future__ import annotations

import pytest
from bot_fixtures import REPO, github_bot
from chatops_fixtures import REDIS_KIND, GitHubChat
from reconcile_fixtures import promise
from waiting import wait_for

from bot.jobs.destlocks import Holder

R1 = f"{REDIS_KIND}/default/r1"


@pytest.fixture
def chat(tmp_path):
    with github_bot(tmp_path) as (platform, github, bot, runner):
        for user, role in (("bob", "read"), ("carol", "write"), ("mallory", "none")):
            github.set_permission(REPO, user, role)
        chat = GitHubChat(platform, github, bot)
        chat.runner = runner
        yield chat


def test_help_reacts_and_lists_what_the_commenter_may_run(chat):
    chat.open(1, "r1")
    comment_id = chat.say(1, "Thanks!\n/promisebot help", user="bob")
    assert [r["content"] for r in chat.github.reactions(REPO, comment_id)] == ["eyes"]
    (reply,) = chat.replies(1)
    assert reply.splitlines()[1].startswith("@bob:")
    assert "| `/promisebot plan [KIND/NAMESPACE/NAME ...]` |" in reply
    apply_row = next(line for line in reply.splitlines() if line.startswith("| `/promisebot apply`"))
    assert "needs write access to acme/platform" in apply_row


def test_comments_without_commands_from_bots_or_itself_are_ignored(chat):
    chat.open(1, "r1")
    quiet = [chat.say(1, "LGTM, but:\n```\n/promisebot apply\n```", user="carol"),
             chat.say(1, "> /promisebot apply", user="carol"),
             chat.say(1, "/promisebot apply", user="dependabot[bot]", user_type="Bot"),
             chat.say(1, "/promisebot apply", user="promisebot")]
    assert chat.replies(1) == [] and chat.merges() == []
    assert all(chat.github.reactions(REPO, c) == [] for c in quiet)


def test_a_denied_command_gets_a_reply_naming_the_role_and_runs_nothing(chat):
    head = chat.open(1, "r1")
    calls = len(chat.runner.calls)
    chat.say(1, "/promisebot apply\n/promisebot rerun " + R1, user="bob")
    replies = chat.replies(1)
    assert len(replies) == 2
    assert "`apply` needs write access to acme/platform; nothing was done." in replies[0]
    assert "`rerun` needs write access" in replies[1]
    assert chat.merges() == [] and len(chat.runner.calls) == calls
    assert chat.statuses(head, "promisebot/plan") == ["pending", "success"]


def test_a_typo_gets_the_closest_command_and_nothing_of_the_comment_runs(chat):
    chat.open(1, "r1")
    calls = len(chat.runner.calls)
    chat.say(1, "/promisebot plan\n/promisebot aply", user="carol")
    (reply,) = chat.replies(1)
    assert "line 2" in reply and "Did you mean `/promisebot apply`?" in reply
    assert len(chat.runner.calls) == calls, "the valid plan line did not run either"


def test_plan_replans_and_named_objects_run_again(chat):
    chat.open(1, "r1")
    first = chat.plan(1)
    calls = len(chat.runner.calls)
    chat.say(1, "/promisebot plan", user="bob")  # anyone who may comment
    assert len(chat.runner.calls) == calls, "nothing changed: the plan's results still hold"
    chat.say(1, f"/promisebot plan {R1}", user="bob")
    assert len(chat.runner.calls) == calls + 1, "the object named ran again"
    assert chat.plan(1).split("\n")[:3] == first.split("\n")[:3]
    chat.say(1, f"/promisebot plan {REDIS_KIND}/default/r9", user="bob")
    assert "the platform has no object" in chat.replies(1)[-1] and "`" + R1 + "`" in chat.replies(1)[-1]


def test_a_fork_runs_no_pipeline_until_ok_to_test_and_a_new_push_needs_another(chat):
    head = chat.open(1, "r1", user="mallory", head_repo="mallory/platform")
    assert chat.runner.calls == []
    assert "waiting for approval" in chat.plan(1) and "its head is in a fork" in chat.plan(1)
    assert chat.statuses(head, "promisebot/plan") == ["pending", "pending"]

    chat.say(1, "/promisebot ok-to-test", user="mallory")
    assert "`ok-to-test` needs write access" in chat.replies(1)[-1] and chat.runner.calls == []

    chat.say(1, "/promisebot ok-to-test", user="carol")
    assert chat.statuses(head, "promisebot/ok-to-test") == ["success"]
    assert len(chat.runner.calls) == 1
    assert "### promisebot plan" in chat.plan(1) and "waiting for approval" not in chat.plan(1)
    assert chat.statuses(head, "promisebot/plan")[-1] == "success"

    head2 = chat.platform.open_change(1, name="r1", spec={"size": 2})
    chat.github.update_pull(REPO, 1, head_sha=head2)
    chat.send_pull("synchronize", 1, head2)
    assert len(chat.runner.calls) == 1, "the approval was for the earlier head"
    assert "waiting for approval" in chat.plan(1)
    assert chat.statuses(head2, "promisebot/plan")[-1] == "pending"


def test_a_non_writer_changing_a_promise_is_planned_without_that_change(chat):
    platform = chat.platform
    from reconcile_fixtures import git, request

    git(platform.work, "checkout", "-q", "-B", "change-1", "main")
    changed = promise("redis")
    changed["metadata"]["labels"] = {"sneaky": "yes"}
    platform.write("promises/redis.yaml", changed)
    platform.write("requests/r1.yaml", request("Redis", "r1"))
    head = platform.commit("a request, and a Promise change")
    git(platform.work, "push", "-q", "-f", "origin", "HEAD:refs/pull/1/head")
    git(platform.work, "checkout", "-q", "main")
    chat.open(1, "r1", user="bob", head=head)
    body = chat.plan(1)
    assert "waiting for approval" in body and "promises/redis.yaml" in body
    chat.say(1, "/promisebot ok-to-test", user="carol")
    body = chat.plan(1)
    assert "Only this change's Resource requests are planned" in body
    assert "`promises/redis.yaml`: changes a Promise" in body
    assert "thing.yaml" in body, "the request was planned"
    assert [c[:2] for c in chat.runner.calls] == [("redis", "r1")], "with the default branch's Promise"


def test_apply_reports_every_unmet_requirement_then_merges_once_they_hold(chat):
    head = chat.open(1, "r1")
    chat.github.update_pull(REPO, 1, mergeable_state="dirty", mergeable=False)
    chat.say(1, "/promisebot apply", user="alice")
    reply = chat.replies(1)[-1]
    assert "2 requirements are not met" in reply
    assert "**approved**" in reply and "**mergeable**" in reply
    assert chat.merges() == []

    chat.github.add_review(REPO, 1, "alice", "APPROVED")  # the author's own approval does not count
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.github.update_pull(REPO, 1, mergeable_state="clean", mergeable=True)
    chat.github.set_merge_result(REPO, 1, sha="e" * 40)
    chat.say(1, "/promisebot apply", user="carol")
    (call,) = chat.merges()
    assert call.body["sha"] == head and call.body["merge_method"] == "merge"
    assert chat.statuses("e" * 40, "promisebot/apply") == ["pending"]
    holders = chat.bot.services.backend.destination_locks.holders(f"github:{REPO}", ["dev"])
    assert [h.number for h in holders.values()] == [1], "its Destination is locked until the merge is applied"

    runs = len(chat.runner.calls)
    merge = chat.platform.merge(1)  # what the forge's merge made, and its event
    chat.send_pull("closed", 1, head, merged=True, merge_sha=merge)
    assert chat.platform.store_files()["dev/resources/default/redis/r1/instance/5058f/thing.yaml"]
    assert len(chat.runner.calls) == runs, "applied from the reviewed plan"
    assert chat.statuses(merge, "promisebot/apply")[-1] == "success"
    assert chat.bot.services.backend.destination_locks.holders(f"github:{REPO}", ["dev"]) == {}


def test_apply_of_a_stale_plan_plans_again_and_asks_again(chat):
    chat.open(1, "r1")
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.platform.push_main("other")  # the base moves
    chat.say(1, "/promisebot apply", user="carol")
    assert chat.merges() == []
    assert "the base branch moved since the plan" in chat.replies(1)[-1]
    base = chat.platform.commits(chat.platform.base, "main")[-1][0]
    assert f"at `{base[:12]}`" in chat.plan(1), "planned onto the new base"


def test_two_changes_on_one_destination_the_second_apply_waits_then_runs(chat):
    heads = {n: chat.open(n, f"r{n}") for n in (1, 2)}
    for n in (1, 2):
        chat.github.add_review(REPO, n, "carol", "APPROVED")
    chat.say(1, "/promisebot apply", user="alice")
    assert len(chat.merges()) == 1
    chat.say(2, "/promisebot plan", user="alice")
    assert f"Destination `dev` is locked by {chat.github.web_url}/{REPO}/pull/1 (its apply" in chat.plan(2)

    chat.say(2, "/promisebot apply", user="alice", wait=False)
    waiting = wait_for(lambda: [r for r in chat.replies(2) if "waits" in r], 30, "the apply to wait")
    assert "Destination `dev` is locked by" in waiting[0] and "/pull/1" in waiting[0]
    assert len(chat.merges()) == 1, "the second apply waits in the queue"

    merge1 = chat.platform.merge(1)
    chat.send_pull("closed", 1, heads[1], merged=True, merge_sha=merge1)  # joins the queue: both done
    assert len(chat.merges()) == 1
    # change 1's merge moved the base: change 2 was planned again for the reviewers
    assert "the base branch moved since the plan" in chat.replies(2)[-1]
    chat.say(2, "/promisebot apply", user="alice")
    assert len(chat.merges()) == 2


def test_unlock_releases_a_lock_whose_owner_is_gone(chat):
    chat.open(1, "r1")
    chat.open(2, "r2")
    locks = chat.bot.services.backend.destination_locks
    # change 1's apply took the lock, then its merge failed and its worker died before releasing it
    assert locks.acquire(f"github:{REPO}", ["dev"], Holder(1, f"https://github.com/{REPO}/pull/1", 0.0)) == {}

    chat.say(2, "/promisebot unlock", user="alice")
    assert "no lock to release" in chat.replies(2)[-1], "change 1 is still open"
    chat.github.update_pull(REPO, 1, state="closed")  # closed, and its event never arrived
    chat.say(2, "/promisebot unlock", user="bob")
    assert "`unlock` needs write access" in chat.replies(2)[-1]
    chat.say(2, "/promisebot unlock", user="alice")
    assert "released the lock of `dev`" in chat.replies(2)[-1]
    assert locks.holders(f"github:{REPO}", ["dev"]) == {}


def test_status_and_rerun_after_the_merge(chat):
    head = chat.open(1, "r1")
    merge = chat.platform.merge(1)
    chat.github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    chat.send_pull("closed", 1, head, merged=True, merge_sha=merge)
    store_head = chat.platform.store_files and _rev(chat.platform.state)

    chat.say(1, "/promisebot status", user="bob")
    reply = chat.replies(1)[-1]
    assert "#### Where it landed" in reply and store_head[:12] in reply and "`dev`" in reply

    runs = len(chat.runner.calls)
    chat.say(1, f"/promisebot rerun {R1}", user="carol")
    assert len(chat.runner.calls) == runs + 1
    assert f"reran `{R1}`: success" in chat.replies(1)[-1]


def _rev(repo) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(repo), "rev-parse", "main"], capture_output=True, text=True,
                          check=True).stdout.strip()


POLICY = """\
commands:
  plan: {teams: [acme/platform-team]}
  status: {users: [dave]}
destinations:
  dev: {owners: [acme/sre]}
apply:
  requirements: [approved, plan-succeeded]
  mergeMethod: squash
"""


def set_policy(chat, text: str) -> None:
    """`.promisebot.yaml` committed on the default branch (what the following changes branch from)."""
    from reconcile_fixtures import git

    (chat.platform.work / ".promisebot.yaml").write_text(text)
    chat.platform.base = chat.platform.commit("the ChatOps policy")
    git(chat.platform.work, "push", "-q", "origin", "main")


def test_the_policy_on_the_default_branch_decides_not_the_change(chat):
    from reconcile_fixtures import git, request

    set_policy(chat, POLICY)
    chat.github.add_team("acme", "platform-team", members=["carol"])
    chat.github.add_team("acme", "sre", members=["erin"])
    platform = chat.platform
    git(platform.work, "checkout", "-q", "-B", "change-1", "main")
    (platform.work / ".promisebot.yaml").write_text("commands:\n  plan: {permission: none}\n  apply: {permission: none}\n")
    platform.write("requests/r1.yaml", request("Redis", "r1"))
    head = platform.commit("a request, and a policy that lets everybody do anything")
    git(platform.work, "push", "-q", "-f", "origin", "HEAD:refs/pull/1/head")
    git(platform.work, "checkout", "-q", "main")
    chat.open(1, "r1", head=head)

    chat.say(1, "/promisebot plan", user="bob")
    assert "`plan` needs membership of acme/platform-team" in chat.replies(1)[-1]
    chat.say(1, "/promisebot apply", user="bob")
    assert "`apply` needs write access" in chat.replies(1)[-1], "the default rule: the change's file is not read"
    replies = len(chat.replies(1))
    chat.say(1, "/promisebot plan", user="carol")  # a member of the team
    assert len(chat.replies(1)) == replies, "planned: the plan comment is the answer"
    chat.say(1, "/promisebot status", user="alice")
    assert "`status` needs being dave" in chat.replies(1)[-1]

    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.say(1, "/promisebot apply", user="alice")
    reply = chat.replies(1)[-1]
    assert "1 requirement is not met" in reply and "Destination dev needs an approval from acme/sre" in reply
    chat.github.add_review(REPO, 1, "erin", "APPROVED")
    chat.say(1, "/promisebot apply", user="alice")
    (merge,) = chat.merges()
    assert merge.body["merge_method"] == "squash"


def test_an_invalid_policy_fails_closed_and_says_where(chat):
    set_policy(chat, "commands:\n  apply:\n    permission: writer\n")
    chat.open(1, "r1")
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.say(1, "/promisebot apply", user="alice")
    reply = chat.replies(1)[-1]
    assert "`apply` was refused" in reply and ".promisebot.yaml:3 commands.apply.permission" in reply
    assert chat.merges() == []
    chat.say(1, "/promisebot help", user="alice")
    assert "| `/promisebot help` |" in chat.replies(1)[-1], "what anyone may run still runs"


def test_plan_succeeded_unmet_then_met(chat):
    chat.runner.failing.add("redis")
    head = chat.open(1, "r1")
    assert chat.statuses(head, "promisebot/plan")[-1] == "failure"
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.say(1, "/promisebot apply", user="alice")
    assert "**plan-succeeded**" in chat.replies(1)[-1] and chat.merges() == []
    chat.runner.failing.clear()
    chat.say(1, "/promisebot plan", user="alice")
    assert chat.statuses(head, "promisebot/plan")[-1] == "success"
    chat.say(1, "/promisebot apply", user="alice")
    assert len(chat.merges()) == 1


def test_promisebots_own_statuses_never_block_its_apply(chat):
    head = chat.open(1, "r1")
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.github.update_pull(REPO, 1, mergeable_state="blocked")
    chat.github.add_check_run(REPO, head, "promisebot/apply", status="in_progress")
    chat.github.add_check_run(REPO, head, "ci/tests", status="completed", conclusion="failure")
    chat.say(1, "/promisebot apply", user="alice")
    reply = chat.replies(1)[-1]
    assert "**mergeable**" in reply and "ci/tests" in reply and chat.merges() == []

    chat.github.add_check_run(REPO, head, "ci/tests", status="completed", conclusion="success")
    chat.say(1, "/promisebot apply", user="alice")
    assert len(chat.merges()) == 1, "blocked only by promisebot's own check: not blocked for promisebot"


def test_drafts_are_planned_when_the_policy_says_so(chat):
    from bot_fixtures import github_pull_event, send_github

    def open_draft(number: int, name: str) -> None:
        head = chat.platform.open_change(number, name=name)
        chat.github.add_pull(REPO, number, head_sha=head, base_sha=chat.platform.base, draft=True)
        event = github_pull_event("opened", chat.platform, number, head)
        event["pull_request"]["draft"] = True
        assert send_github(chat.bot.url, "pull_request", event).status_code == 202
        chat.bot.queue.join()

    open_draft(1, "r1")
    assert chat.runner.calls == [] and not [c for c in chat.github.comments(REPO, 1)]
    set_policy(chat, "plan:\n  drafts: true\n")
    open_draft(2, "r2")
    assert "### promisebot plan" in chat.plan(2)


def test_a_merge_the_forge_refuses_is_reported_and_frees_the_locks(chat):
    chat.open(1, "r1")
    chat.github.add_review(REPO, 1, "carol", "APPROVED")
    chat.github.set_merge_result(REPO, 1, status=405, message="Base branch was modified. Review and try again.")
    chat.say(1, "/promisebot apply\n/promisebot help", user="alice")
    failed, helped = chat.replies(1)[-2:]
    assert "`apply` could not finish:" in failed and "Base branch was modified" in failed
    assert "| `/promisebot help` |" in helped, "the next command of the comment still ran"
    assert chat.bot.services.backend.destination_locks.holders(f"github:{REPO}", ["dev"]) == {}
