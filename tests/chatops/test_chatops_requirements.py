"""Apply requirements (bot/chatops/requirements.py): every unmet one, at once."""

import dataclasses

import pytest

from bot.chatops.policy import REQUIREMENTS, load_policy
from bot.chatops.requirements import (
    ApplyFacts,
    Unmet,
    approvals_by_others,
    check_apply,
    owner_approved,
    stale_plan,
    unmet,
)

HEAD, OLD_HEAD, BASE, NEW_BASE = "a" * 40, "b" * 40, "c" * 40, "d" * 40

READY = ApplyFacts(
    author="bob", head_sha=HEAD, current_base_sha=BASE, approvers=("alice",), mergeable=True,
    plan_head_sha=HEAD, plan_base_sha=BASE, plan_state="success", destinations=("production", "dev"),
)


def facts(**changes):
    return dataclasses.replace(READY, **changes)


def reasons(found):
    return {u.requirement: u.reason for u in found}


def test_a_ready_change_meets_every_requirement():
    assert unmet(READY, REQUIREMENTS) == []
    assert stale_plan(READY) is None


def test_every_unmet_requirement_is_listed_in_order():
    found = unmet(facts(approvers=(), mergeable=False, mergeable_reason="has conflicts",
                        plan_base_sha=NEW_BASE, plan_state="failure"), REQUIREMENTS)
    assert found == [
        Unmet("approved", "needs 1 approval from someone other than the author, has 0"),
        Unmet("mergeable", "the forge says the change cannot be merged: has conflicts"),
        Unmet("undiverged", "the base branch moved since the plan (dddddddddddd -> cccccccccccc); "
                            "re-plan needed (/promisebot plan)"),
        Unmet("plan-succeeded", "the plan of aaaaaaaaaaaa failed; fix the change, then plan again"),
    ]


def test_only_the_listed_requirements_are_checked():
    bad = facts(approvers=(), mergeable=None)
    assert [u.requirement for u in unmet(bad, ["mergeable"])] == ["mergeable"]
    assert unmet(bad, []) == []
    with pytest.raises(ValueError, match="unknown requirements"):
        unmet(READY, ["approved", "green"])


def test_approved_counts_approvals_from_others_than_the_author():
    assert reasons(unmet(facts(approvers=("bob",)), ["approved"])) == {
        "approved": "needs 1 approval from someone other than the author, has 0"}
    assert reasons(unmet(facts(approvers=("BOB", "alice", "Alice")), ["approved"], approvals=2)) == {
        "approved": "needs 2 approvals from someone other than the author, has 1"}
    assert unmet(facts(approvers=("alice", "carol")), ["approved"], approvals=2) == []
    assert unmet(facts(approvers=()), ["approved"], approvals=0) == []
    assert approvals_by_others(facts(approvers=("bob", "alice", "ALICE", "carol"))) == ("alice", "carol")


def test_mergeable():
    assert unmet(facts(mergeable=True), ["mergeable"]) == []
    assert reasons(unmet(facts(mergeable=None), ["mergeable"])) == {
        "mergeable": "the forge is still computing mergeability, try again"}
    assert reasons(unmet(facts(mergeable=False), ["mergeable"])) == {
        "mergeable": "the forge says the change cannot be merged"}
    assert reasons(unmet(facts(mergeable=False, mergeable_reason="blocked by branch protection"), ["mergeable"])) == {
        "mergeable": "the forge says the change cannot be merged: blocked by branch protection"}


def test_undiverged():
    assert unmet(facts(), ["undiverged"]) == []
    assert reasons(unmet(facts(current_base_sha=NEW_BASE), ["undiverged"])) == {
        "undiverged": "the base branch moved since the plan (cccccccccccc -> dddddddddddd); re-plan needed "
                      "(/promisebot plan)"}
    assert reasons(unmet(facts(plan_base_sha=None), ["undiverged"])) == {
        "undiverged": "there is no plan yet; plan first (/promisebot plan)"}


@pytest.mark.parametrize("changes, reason", [
    ({"plan_head_sha": OLD_HEAD}, "the plan is stale: it is of an older head (bbbbbbbbbbbb; the head is now "
                                  "aaaaaaaaaaaa); re-plan needed (/promisebot plan)"),
    ({"plan_head_sha": None, "plan_state": None}, "there is no plan of the head aaaaaaaaaaaa yet; plan first "
                                                  "(/promisebot plan)"),
    ({"plan_state": None}, "there is no plan of the head aaaaaaaaaaaa yet; plan first (/promisebot plan)"),
    ({"plan_state": "pending"}, "the plan of aaaaaaaaaaaa is still running"),
    ({"plan_state": "failure"}, "the plan of aaaaaaaaaaaa failed; fix the change, then plan again"),
    ({"plan_state": "error"}, "the plan of aaaaaaaaaaaa did not succeed (error)"),
    # a successful plan of an older head is stale, not success
    ({"plan_head_sha": OLD_HEAD, "plan_state": "success"}, "the plan is stale: it is of an older head "
     "(bbbbbbbbbbbb; the head is now aaaaaaaaaaaa); re-plan needed (/promisebot plan)"),
])
def test_plan_succeeded(changes, reason):
    assert unmet(facts(**changes), ["plan-succeeded"]) == [Unmet("plan-succeeded", reason)]


def test_stale_plan():
    assert stale_plan(facts(plan_head_sha=OLD_HEAD)) == (
        "the plan is of an older head (bbbbbbbbbbbb; the head is now aaaaaaaaaaaa)")
    assert stale_plan(facts(current_base_sha=NEW_BASE)) == (
        "the base branch moved since the plan (cccccccccccc -> dddddddddddd)")
    assert stale_plan(facts(plan_head_sha=None, plan_base_sha=None)) == "there is no plan of the head aaaaaaaaaaaa yet"
    assert stale_plan(facts(plan_state="failure")) is None  # a failed plan of this head is not stale


def test_destination_owners_approval_by_login():
    owners = {"production": ("alice", "acme/sre")}
    assert unmet(READY, [], owners=owners) == []
    assert unmet(facts(approvers=("carol",)), [], owners=owners) == [
        Unmet("owners", "Destination production needs an approval from one of alice, acme/sre (not the author)",
              "production")]
    assert unmet(facts(approvers=("ALICE",)), [], owners=owners) == []


def test_destination_owners_approval_by_team_membership():
    owners = {"production": ("acme/sre",)}
    by_team = facts(approvers=("carol",), approver_teams={"Carol": {"ACME/sre", "acme/dev"}})
    assert unmet(by_team, [], owners=owners) == []
    other_team = facts(approvers=("carol",), approver_teams={"carol": {"acme/dev"}})
    assert unmet(other_team, [], owners=owners) == [
        Unmet("owners", "Destination production needs an approval from acme/sre (not the author)", "production")]
    # a team membership of someone who did not approve does not count
    assert not owner_approved(facts(approvers=("carol",), approver_teams={"dave": {"acme/sre"}}), ("acme/sre",))


def test_the_author_cannot_approve_as_an_owner():
    owners = {"production": ("bob", "acme/sre")}
    author_only = facts(approvers=("bob",), approver_teams={"bob": {"acme/sre"}})
    assert [u.destination for u in unmet(author_only, [], owners=owners)] == ["production"]


def test_each_destination_with_owners_is_checked():
    owners = {"production": ("alice",), "dev": ("dave",), "test": ()}
    assert unmet(READY, [], owners=owners) == [
        Unmet("owners", "Destination dev needs an approval from dave (not the author)", "dev")]


def test_check_apply_uses_the_policy():
    policy = load_policy("""\
destinations:
  production:
    owners: [acme/sre]
  elsewhere:
    owners: [zed]
apply:
  requirements: [approved, plan-succeeded]
  approvals: 2
""")
    found = check_apply(policy, facts(mergeable=False, current_base_sha=NEW_BASE))
    assert [(u.requirement, u.destination) for u in found] == [("approved", None), ("owners", "production")]
    assert check_apply(policy, facts(approvers=("alice", "sam"), approver_teams={"sam": ["acme/sre"]})) == []
    assert check_apply(load_policy(None), READY) == []
