"""The ChatOps policy (bot/chatops/policy.py): `.promisebot.yaml`'s commands, destinations,
apply and plan sections, and who may run what."""

import pytest

from bot.chatops.grammar import COMMANDS
from bot.chatops.policy import (
    DEFAULT_PERMISSIONS,
    REQUIREMENTS,
    ROLES,
    ApplyPolicy,
    Decision,
    Policy,
    PolicyError,
    Rule,
    authorize,
    gitlab_role,
    load_policy,
    needs,
)

EXAMPLE = """\
# promisebot settings and ChatOps policy
stateBranch: promisebot/state
runner:
  timeoutSeconds: 300
commands:
  apply:
    permission: write
    users: [alice]
    teams: [acme/platform]
  plan:
    permission: read
destinations:
  production:
    owners: [alice, acme/sre]
  staging:
    owners: []
apply:
  requirements: [approved, mergeable, undiverged, plan-succeeded]
  approvals: 2
  mergeMethod: squash
plan:
  drafts: true
"""


def errors(text, path=".promisebot.yaml"):
    with pytest.raises(PolicyError) as caught:
        load_policy(text, path)
    return str(caught.value).splitlines()


def test_no_file_gives_the_defaults():
    policy = load_policy(None)
    assert policy == Policy()
    assert {c: policy.rule(c).permission for c in COMMANDS} == {
        "plan": "none", "apply": "write", "status": "none", "rerun": "write",
        "ok-to-test": "write", "unlock": "write", "help": "none",
    }
    assert policy.apply == ApplyPolicy(REQUIREMENTS, 1, "merge")
    assert policy.plan_drafts is None
    assert policy.owners_for(["production"]) == {}


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "stateBranch: x\nexclude: [a]\n"])
def test_a_file_without_policy_sections_gives_the_defaults(text):
    assert load_policy(text) == Policy()


def test_the_example_policy():
    policy = load_policy(EXAMPLE)
    assert policy.rule("apply") == Rule("apply", "write", ("alice",), ("acme/platform",))
    assert policy.rule("apply").teams == ("acme/platform",)
    assert policy.rule("plan") == Rule("plan", "read")
    assert policy.rule("unlock") == Rule("unlock", "write")  # not in the file: the default
    assert policy.owners_for(["staging", "production", "dev"]) == {"production": ("alice", "acme/sre")}
    assert policy.apply == ApplyPolicy(REQUIREMENTS, 2, "squash")
    assert policy.plan_drafts is True


def test_requirements_keep_their_canonical_order_and_appear_once():
    policy = load_policy("apply:\n  requirements: [plan-succeeded, mergeable, plan-succeeded]\n")
    assert policy.apply.requirements == ("mergeable", "plan-succeeded")
    assert load_policy("apply:\n  requirements: []\n").apply.requirements == ()


def test_an_unknown_command_name_raises():
    with pytest.raises(ValueError, match="unknown command 'aply'"):
        Policy().rule("aply")


def test_every_error_is_reported_with_file_line_and_field():
    text = """\
commands:
  apply:
    permission: writer
    users: [alice, 'bad user', 7]
    team: [acme/platform]
  aply: {}
  plan:
  rerun: [write]
  unlock:
    teams: [platform]
destinations:
  Production:
    owners: [alice, acme/sre]
  staging: {}
  dev:
    owners: alice
apply:
  requirements: [approved, merged]
  approvals: -1
  mergeMethod: fast-forward
plan:
  drafts: maybe
  autoplan: true
"""
    assert errors(text) == [
        ".promisebot.yaml:3 commands.apply.permission: 'writer' is not one of none, read, triage, write, maintain, admin",
        ".promisebot.yaml:4 commands.apply.users[1]: 'bad user' is not a forge login",
        ".promisebot.yaml:4 commands.apply.users[2]: 7 is not a forge login",
        ".promisebot.yaml:5 commands.apply.team: unknown key (known: permission, users, teams)",
        ".promisebot.yaml:6 commands.aply: unknown command (known: plan, apply, status, rerun, ok-to-test, unlock, help)",
        ".promisebot.yaml:7 commands.plan: must be a mapping, not null",
        ".promisebot.yaml:8 commands.rerun: must be a mapping, not a list",
        ".promisebot.yaml:10 commands.unlock.teams[0]: 'platform' is not a team (GitHub org/team-slug, GitLab group/subgroup)",
        ".promisebot.yaml:12 destinations.Production: not a Destination name (a DNS subdomain: lowercase letters, digits, '-' and '.')",
        ".promisebot.yaml:14 destinations.staging.owners: required: the logins and teams one of whom must approve an apply touching this Destination",
        ".promisebot.yaml:16 destinations.dev.owners: must be a list, not 'alice'",
        ".promisebot.yaml:18 apply.requirements[1]: 'merged' is not one of approved, mergeable, undiverged, plan-succeeded",
        ".promisebot.yaml:19 apply.approvals: must be a whole number, 0 or more, not -1",
        ".promisebot.yaml:20 apply.mergeMethod: 'fast-forward' is not one of merge, squash, rebase",
        ".promisebot.yaml:22 plan.drafts: must be true or false, not 'maybe'",
        ".promisebot.yaml:23 plan.autoplan: unknown key (known: drafts)",
    ]


def test_the_errors_carry_problems_for_the_validate_report():
    with pytest.raises(PolicyError) as caught:
        load_policy("apply:\n  approvals: true\n", "platform/.promisebot.yaml")
    [problem] = caught.value.problems
    assert (problem.source.file, problem.source.line, problem.field) == ("platform/.promisebot.yaml", 2, "apply.approvals")
    assert problem.message == "must be a whole number, 0 or more, not true"
    assert isinstance(caught.value, ValueError)


def test_approvals_without_the_approved_requirement_is_an_error():
    assert errors("apply:\n  requirements: [mergeable]\n  approvals: 2\n") == [
        ".promisebot.yaml:3 apply.approvals: has no effect unless apply.requirements includes approved",
    ]
    assert load_policy("apply:\n  approvals: 0\n").apply.approvals == 0


@pytest.mark.parametrize("text, expected", [
    ("commands: [apply]\n", ".promisebot.yaml:1 commands: must be a mapping, not a list"),
    ("apply: yes\n", ".promisebot.yaml:1 apply: must be a mapping, not true"),
    ("plan: 3\n", ".promisebot.yaml:1 plan: must be a mapping, not 3"),
    ("destinations:\n  prod:\n", ".promisebot.yaml:2 destinations.prod: must be a mapping, not null"),
    ("apply:\n  requirements: approved\n", ".promisebot.yaml:2 apply.requirements: must be a list, not 'approved'"),
    ("apply:\n  approvals: '2'\n", ".promisebot.yaml:2 apply.approvals: must be a whole number, 0 or more, not '2'"),
    ("apply:\n  approvals: 1.5\n", ".promisebot.yaml:2 apply.approvals: must be a whole number, 0 or more, not 1.5"),
    ("commands:\n  apply:\n    permission: 30\n",
     ".promisebot.yaml:3 commands.apply.permission: 30 is not one of none, read, triage, write, maintain, admin"),
    ("destinations:\n  prod.eu:\n    owners: [{a: b}]\n",
     ".promisebot.yaml:3 destinations[prod.eu].owners[0]: a mapping is not a forge login or a team "
     "(org/team-slug, group/subgroup)"),
])
def test_wrong_types(text, expected):
    assert errors(text) == [expected]


def test_broken_yaml_is_an_error_at_its_line():
    [line] = errors("commands:\n  apply:\n    users: [alice\n")
    assert line.startswith(".promisebot.yaml:4: malformed YAML")


def test_a_document_that_is_not_a_mapping_and_extra_documents_are_errors():
    assert errors("- commands\n") == [
        ".promisebot.yaml:1: document 1 is a list, not a mapping (an object with apiVersion and kind)"]
    assert errors("plan: {}\n---\ncommands: {}\n") == [
        ".promisebot.yaml:3: document 2: only one YAML document is allowed in this file"]


def test_deep_nesting_alias_bombs_and_huge_files_are_refused():
    [deep] = errors("commands: " + "[" * 150 + "]" * 150 + "\n")
    assert "nesting too deep" in deep
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6))
    [alias] = errors(bomb)
    assert "alias bomb" in alias
    [huge] = errors("# " + "x" * (1 << 20) + "\n")
    assert "over the 1048576-byte cap" in huge


def test_duplicate_keys_are_refused():
    assert errors("plan:\n  drafts: true\n  drafts: false\n") == [
        ".promisebot.yaml:3: duplicate key 'drafts' in a mapping"]


# -- authorization ------------------------------------------------------------------------------

def test_roles_are_ordered():
    assert ROLES == ("none", "read", "triage", "write", "maintain", "admin")


@pytest.mark.parametrize("role, allowed", [
    ("none", False), ("read", False), ("triage", False), ("write", True), ("maintain", True), ("admin", True),
])
def test_a_role_at_least_the_permission_is_allowed(role, allowed):
    decision = authorize(Policy().rule("apply"), "bob", role, set(), "acme/platform")
    assert decision == Decision(allowed, "write access to acme/platform")


def test_anyone_may_run_the_open_commands():
    for command in ("plan", "status", "help"):
        assert authorize(Policy().rule(command), "stranger", "none", set()) == Decision(True, "")
    for command in ("apply", "rerun", "ok-to-test", "unlock"):
        assert not authorize(Policy().rule(command), "stranger", "none", set()).allowed
    assert set(DEFAULT_PERMISSIONS) == set(COMMANDS)


def test_listed_users_and_team_members_are_allowed_whatever_their_role():
    rule = load_policy(EXAMPLE).rule("apply")
    assert authorize(rule, "alice", "read", set()).allowed
    assert authorize(rule, "ALICE", "none", set()).allowed  # logins compare case-insensitively
    assert authorize(rule, "carol", "read", {"acme/platform"}).allowed
    assert authorize(rule, "carol", "read", {"Acme/Platform"}).allowed
    assert not authorize(rule, "carol", "read", {"acme/other", "platform"}).allowed
    assert authorize(rule, "carol", "read", set(), "acme/infra").needs == (
        "write access to acme/infra, or being alice, or membership of acme/platform")


def test_an_entry_without_permission_allows_only_its_users_and_teams():
    rule = load_policy("commands:\n  unlock:\n    teams: [acme/sre, acme/platform]\n").rule("unlock")
    assert rule == Rule("unlock", None, (), ("acme/sre", "acme/platform"))
    assert not authorize(rule, "root", "admin", set()).allowed
    decision = authorize(rule, "dave", "write", {"acme/sre"})
    assert decision == Decision(True, "membership of one of acme/sre, acme/platform")


def test_an_empty_entry_allows_nobody():
    rule = load_policy("commands:\n  apply: {}\n").rule("apply")
    decision = authorize(rule, "root", "admin", {"acme/platform"})
    assert not decision.allowed
    assert decision.needs == "nothing anyone can have (.promisebot.yaml allows no one to run it)"


def test_the_needs_phrase_of_the_brief():
    rule = Rule("apply", "write", (), ("acme/platform-team",))
    assert needs(rule, "acme/platform") == "write access to acme/platform, or membership of acme/platform-team"
    assert needs(Rule("apply", "maintain", ("a", "b"))) == "maintain access to this repository, or being one of a, b"


def test_an_unknown_role_is_a_caller_error():
    with pytest.raises(ValueError, match="unknown role 'owner'"):
        authorize(Policy().rule("plan"), "bob", "owner", set())


@pytest.mark.parametrize("level, role", [
    (0, "none"), (5, "none"), (10, "read"), (15, "read"), (20, "triage"), (30, "write"), (40, "maintain"),
    (50, "admin"), (60, "admin"),
])
def test_gitlab_access_levels_map_onto_roles(level, role):
    assert gitlab_role(level) == role
