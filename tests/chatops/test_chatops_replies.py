"""The bot's replies to ChatOps commands (bot/chatops/replies.py): markdown, safe to post."""

import re

import pytest

from bot.chatops.grammar import COMMANDS, parse
from bot.chatops.policy import Decision, PolicyError, authorize, load_policy
from bot.chatops.replies import (
    REPLY_MARKER,
    render_denied,
    render_help,
    render_lock_held,
    render_ok_to_test,
    render_policy_error,
    render_problems,
    render_unknown_object,
    render_unmet,
)
from bot.chatops.requirements import Unmet

PLAN_MARKER = "<!-- promisebot:plan -->"
ZWSP = "\u200b"
GHP = "ghp_" + "a1B2c3D4e5" * 4


def decisions_for(login, role, teams=frozenset(), text=None):
    policy = load_policy(text)
    return {c: authorize(policy.rule(c), login, role, teams, "acme/platform") for c in COMMANDS}


def all_replies():
    problems = parse("/promisebot aply").problems
    return [
        render_help("bob", decisions_for("bob", "read")),
        render_help("bob"),
        render_denied("bob", "apply", Decision(False, "write access to acme/platform")),
        render_problems("bob", problems),
        render_unmet("bob", [Unmet("mergeable", "the forge is still computing mergeability, try again")]),
        render_ok_to_test("alice", "f" * 40),
        render_lock_held("bob", "#12"),
        render_unknown_object("bob", "rerun", "Promise/redis", ["Promise/redis-x"]),
        render_policy_error("bob", "apply", PolicyError([])),
    ]


def test_every_reply_starts_with_the_reply_marker_not_the_plan_marker():
    for reply in all_replies():
        assert reply.startswith(REPLY_MARKER + "\n")
        assert PLAN_MARKER not in reply
        assert reply.endswith("\n")
    assert REPLY_MARKER != PLAN_MARKER


def test_help_says_which_commands_this_commenter_may_run_and_what_the_others_need():
    reply = render_help("bob", decisions_for("bob", "read"))
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `/promisebot ([a-z-]+)[^`]*` \| .* \| (.*) \|$",
                                                        reply, re.M)}
    assert rows == {
        "plan": "allowed", "status": "allowed", "help": "allowed",
        "apply": "needs write access to acme/platform", "rerun": "needs write access to acme/platform",
        "ok-to-test": "needs write access to acme/platform", "unlock": "needs write access to acme/platform",
    }
    assert reply.startswith(f"{REPLY_MARKER}\n@bob: promisebot's commands")


def test_help_for_a_team_member():
    policy = "commands:\n  apply:\n    permission: admin\n    teams: [acme/platform-team]\n"
    assert "| allowed |" in render_help("carol", decisions_for("carol", "none", {"acme/platform-team"}, policy))
    reply = render_help("dave", decisions_for("dave", "write", set(), policy))
    assert "needs admin access to acme/platform, or membership of acme/platform-team" in reply


def test_help_without_decisions_lists_the_commands():
    reply = render_help("bob")
    for command in COMMANDS:
        assert f"`/promisebot {command}" in reply
    assert "`/promisebot plan [KIND/NAMESPACE/NAME ...]`" in reply
    assert "`/promisebot rerun KIND/NAMESPACE/NAME`" in reply


def test_denied():
    decision = authorize(load_policy("commands:\n  apply:\n    permission: write\n    teams: [acme/platform-team]\n")
                         .rule("apply"), "bob", "read", set(), "acme/platform")
    assert render_denied("bob", "apply", decision) == (
        f"{REPLY_MARKER}\n@bob: `apply` needs write access to acme/platform, or membership of "
        "acme/platform-team; nothing was done.\n")


def test_problems_name_the_closest_command_and_include_the_help():
    body = "/promisebot aply\n/promisebot\n/promisebot rerun\n/promisebot zzzz\n/promisebot plan bad"
    reply = render_problems("bob", parse(body).problems, decisions_for("bob", "write"))
    assert "- line 1: `/promisebot aply`: unknown command. Did you mean `/promisebot apply`?" in reply
    assert "- line 2: `/promisebot`: no command given. Try `/promisebot help`." in reply
    assert ("- line 3: `/promisebot rerun`: rerun takes exactly one KIND/NAMESPACE/NAME. "
            "Usage: `/promisebot rerun KIND/NAMESPACE/NAME`.") in reply
    assert "- line 4: `/promisebot zzzz`: unknown command. `/promisebot help` lists the commands." in reply
    assert "- line 5: `bad`: bad argument of plan: expected KIND/NAMESPACE/NAME" in reply
    assert "| `/promisebot unlock` |" in reply and "| allowed |" in reply


def test_an_overlong_line_is_quoted_short():
    line = "/promisebot plan " + "Promise/x " * 200
    reply = render_problems("bob", parse(line).problems)
    assert "- line 1: `/promisebot plan Promise/x" in reply
    assert "…`: line too long: a command line has at most 1000 characters." in reply
    assert len(reply) < 3000


def test_backticks_in_user_text_cannot_break_out_of_the_code_span():
    [problem] = parse("/promisebot ``` **bold** `x`").problems
    reply = render_problems("bob", [problem])
    line = next(line for line in reply.splitlines() if line.startswith("- line 1"))
    assert "- line 1: ```` /promisebot ``` **bold** `x` ````: unknown command" in line


def test_newlines_in_user_text_stay_on_one_line():
    reply = render_unknown_object("bob", "rerun", "Promise/a\n# Heading\n<img src=x onerror=alert(1)>", [])
    assert "\n# Heading" not in reply
    assert "`Promise/a # Heading <img src=x onerror=alert(1)>`" in reply


def test_mentions_in_user_text_never_ping():
    problems = parse("/promisebot plan @alice\n/promisebot @everyone").problems
    reply = render_problems("bob", problems)
    assert re.search(r"@(alice|everyone)", reply) is None
    assert f"@{ZWSP}alice" in reply
    unknown = render_unknown_object("bob", "rerun", "Kind/ns/@carol", ["Kind/ns/@dave"])
    assert re.search(r"@(carol|dave)", unknown) is None
    unmet = render_unmet("bob", [Unmet("mergeable", "the forge says the change cannot be merged: ask @erin")])
    assert "@erin" not in unmet and f"@{ZWSP}erin" in unmet
    assert "@bob:" in unmet  # the commenter, and only the commenter, is addressed


def test_the_commenter_login_keeps_only_login_characters():
    reply = render_denied("bob <b>@x</b>", "apply", Decision(False, "write access to acme/platform"))
    assert reply.startswith(f"{REPLY_MARKER}\n@bobbxb: ")
    assert render_denied("", "apply", Decision(False, "x")).startswith(f"{REPLY_MARKER}\n`apply` needs x")


def test_plain_text_is_inert_markdown_and_html():
    reply = render_unmet("bob", [Unmet("mergeable", "cannot merge: *x* _y_ [z](http://e) <b>w</b> | `c`")])
    assert r"cannot merge: \*x\* \_y\_ \[z\](http://e) &lt;b&gt;w&lt;/b&gt; \| \`c\`" in reply


def test_unmet_lists_every_requirement():
    reply = render_unmet("bob", [
        Unmet("approved", "needs 1 approval from someone other than the author, has 0"),
        Unmet("plan-succeeded", "the plan of aaaaaaaaaaaa is still running"),
        Unmet("owners", "Destination production needs an approval from one of alice, acme/sre (not the author)",
              "production"),
    ])
    assert reply == (
        f"{REPLY_MARKER}\n@bob: `apply` cannot run yet: 3 requirements are not met:\n\n"
        "- **approved**: needs 1 approval from someone other than the author, has 0\n"
        "- **plan-succeeded**: the plan of aaaaaaaaaaaa is still running\n"
        "- **owners**: Destination production needs an approval from one of alice, acme/sre (not the author)\n")
    assert "1 requirement is not met:" in render_unmet("bob", [Unmet("mergeable", "x")])


def test_ok_to_test_names_the_commit():
    reply = render_ok_to_test("alice", "0123456789abcdef" * 2 + "01234567")
    assert reply == (f"{REPLY_MARKER}\n@alice: ok-to-test: promisebot will plan commit `0123456789ab` of this "
                     "change. A later push needs another `/promisebot ok-to-test`.\n")


@pytest.mark.parametrize("holder, shown", [
    ("#12", "locked by #12,"),
    ("!7", "locked by !7,"),
    ("https://github.com/acme/platform/pull/12", "locked by https://github.com/acme/platform/pull/12,"),
    ("<script>", "locked by change `<script>`,"),
    ("", "locked by another change,"),
])
def test_lock_held_names_the_holder(holder, shown):
    reply = render_lock_held("bob", holder, ["prod"])
    assert shown in reply
    assert "`apply` waits: Destination `prod` is locked" in reply and "`/promisebot unlock`" in reply
    assert "Destinations `dev`, `prod` are locked" in render_lock_held("bob", holder, ["dev", "prod"])


def test_unknown_object_with_the_closest_names():
    known = ["App.x.io/default/my-app", "App.x.io/default/my-app2", "App.x.io/other/my-app", "Promise/redis"]
    reply = render_unknown_object("bob", "rerun", "App.x.io/default/my-ap", known)
    assert "`rerun`: the platform has no object `App.x.io/default/my-ap`; nothing was done." in reply
    closest = reply.splitlines()[-1]
    assert closest.startswith("Closest: `App.x.io/default/my-app`")
    assert "Promise/redis" not in closest
    nothing = render_unknown_object("bob", "status", "Zzz/q", known)
    assert "Closest" not in nothing and "`/promisebot status` lists the objects" in nothing


def test_policy_error_lists_the_problems():
    with pytest.raises(PolicyError) as caught:
        load_policy("commands:\n  apply:\n    permission: writer\n")
    reply = render_policy_error("bob", "apply", caught.value)
    assert ("- `.promisebot.yaml:3 commands.apply.permission: 'writer' is not one of none, read, triage, write, "
            "maintain, admin`") in reply


def test_secrets_are_redacted():
    reply = render_unknown_object("bob", "rerun", f"Kind/ns/hunter2-secret {GHP}", [], secrets=["hunter2-secret"])
    assert "hunter2-secret" not in reply and GHP not in reply
    assert "***" in reply
