"""The ChatOps grammar (bot/chatops/grammar.py): which lines of a comment are commands."""

import pytest

from bot.chatops.grammar import (
    COMMANDS,
    MAX_COMMANDS,
    MAX_LINE_CHARS,
    MAX_QUOTE_CHARS,
    Command,
    ObjectRef,
    RefError,
    closest_command,
    parse,
    parse_object_ref,
)
from bot.model.objects import Ref

APP = "App.example.promise.syntasso.io"
LONG_NAME = ".".join(["c" * 63] * 3 + ["c" * 61])  # 253 characters, the most a name may have


def names(body, login=None):
    return [c.name for c in parse(body, login).commands]


def test_a_command_line_gives_a_command_with_its_line():
    parsed = parse("Looks good.\n/promisebot plan\n")
    assert parsed.commands == (Command("plan", (), 2),)
    assert parsed.problems == ()


def test_a_comment_without_a_command_is_empty():
    for body in ("", "LGTM", "please run promisebot plan", "- /promisebot plan", "see /promisebot apply"):
        parsed = parse(body)
        assert parsed.empty, body


def test_several_commands_run_in_order():
    body = "/promisebot plan\nthen\n/promisebot status\n/promisebot apply"
    parsed = parse(body)
    assert [(c.name, c.line) for c in parsed.commands] == [("plan", 1), ("status", 3), ("apply", 4)]


def test_the_prefix_and_the_command_are_case_insensitive_arguments_are_not():
    parsed = parse(f"/PromiseBot PLAN {APP}/default/my-app")
    assert parsed.commands == (Command("plan", (ObjectRef(APP, "default", "my-app"),), 1),)


def test_the_prefix_must_be_followed_by_whitespace_or_the_end_of_the_line():
    assert parse("/promisebotx plan").empty
    assert parse("/promisebot-plan").empty
    assert names("/promisebot\tplan") == ["plan"]
    assert parse("/promisebot").problems[0].kind == "empty"


@pytest.mark.parametrize("body", [
    "```\n/promisebot apply\n```",
    "~~~\n/promisebot apply\n~~~",
    "```yaml\n/promisebot apply\n```",
    "  ```\n/promisebot apply\n   ```",
    "````\n```\n/promisebot apply\n```\n````",  # a shorter fence inside does not close a longer one
    "~~~\n```\n/promisebot apply\n~~~",  # the other fence character does not close it
    "```\n/promisebot apply",  # never closed: the rest of the comment is code
    "```\n/promisebot apply\n```` \n",  # a longer closing fence (and trailing spaces) closes
])
def test_lines_inside_code_fences_are_ignored(body):
    assert parse(body).empty


def test_a_fence_closes_and_later_commands_count():
    body = "````\n/promisebot apply\n```\n/promisebot unlock\n````\n/promisebot plan\n~~~~~\n~~~~\n~~~~~~\n/promisebot status"
    assert names(body) == ["plan", "status"]


def test_a_backtick_fence_whose_info_holds_a_backtick_is_not_a_fence():
    assert names("``` not `a fence\n/promisebot plan") == ["plan"]


def test_a_closing_fence_indented_four_spaces_does_not_close():
    assert names("```\n    ```\n/promisebot apply\n```\n/promisebot plan") == ["plan"]


def test_quoted_lines_are_ignored():
    assert parse("> /promisebot apply").empty
    assert parse("   > /promisebot apply").empty
    assert parse(">/promisebot apply\n>> /promisebot unlock").empty
    assert names("> /promisebot apply\n\n/promisebot plan") == ["plan"]


def test_indented_code_is_ignored_up_to_three_spaces_are_allowed():
    assert names("   /promisebot plan") == ["plan"]
    assert parse("    /promisebot apply").empty
    assert parse("\t/promisebot apply").empty
    assert parse("  \t/promisebot apply").empty


def test_html_comment_blocks_are_ignored():
    assert parse("<!-- /promisebot apply -->").empty
    assert parse("<!--\n/promisebot apply\n-->").empty
    assert names("<!--\nhidden\n/promisebot apply\n-->\n/promisebot plan") == ["plan"]


def test_crlf_and_cr_line_ends():
    parsed = parse("hello\r\n/promisebot plan Promise/redis\r\n```\r\n/promisebot apply\r\n```\r\n/promisebot status\r\n")
    assert parsed.commands == (Command("plan", (ObjectRef("Promise", "", "redis"),), 2), Command("status", (), 6))
    assert names("a\r/promisebot help\r") == ["help"]


def test_the_bot_login_form():
    assert names("@promisebot plan", "promisebot") == ["plan"]
    assert names("@PromiseBot plan", "@promisebot") == ["plan"]  # case-insensitive; login given with @
    assert parse("@promisebot plan").empty  # no login known: only /promisebot
    assert parse("@promisebot-x plan", "promisebot").empty
    assert parse("@promisebotplan", "promisebot").empty
    assert parse("hey @promisebot plan", "promisebot").empty


def test_a_github_app_answers_to_its_login_with_and_without_the_bot_suffix():
    body = "@acme-promisebot[bot] plan\n@acme-promisebot apply"
    assert names(body, "acme-promisebot[bot]") == ["plan", "apply"]


def test_the_prefix_alone_suggests_help():
    [problem] = parse("/promisebot   ").problems
    assert (problem.line, problem.text, problem.kind, problem.suggestion) == (1, "/promisebot", "empty", "help")


@pytest.mark.parametrize("typo, expected", [
    ("aply", "apply"), ("paln", "plan"), ("stauts", "status"), ("ok_to_test", "ok-to-test"),
    ("oktotest", "ok-to-test"), ("unlcok", "unlock"), ("hlep", "help"), ("re-run", "rerun"), ("/plan", "plan"),
])
def test_a_typo_gets_the_closest_command(typo, expected):
    [problem] = parse(f"/promisebot {typo}").problems
    assert problem.kind == "unknown"
    assert problem.message == "unknown command"
    assert problem.suggestion == expected
    assert problem.text == f"/promisebot {typo}"


def test_an_unknown_command_far_from_any_has_no_suggestion():
    [problem] = parse("/promisebot frobnicate the-thing").problems
    assert (problem.kind, problem.suggestion) == ("unknown", None)
    assert closest_command("xyz") is None
    assert closest_command("APPLY") == "apply"


def test_problems_do_not_stop_the_other_lines():
    parsed = parse("/promisebot aply\n/promisebot plan")
    assert names("/promisebot aply\n/promisebot plan") == ["plan"]
    assert [p.line for p in parsed.problems] == [1]


@pytest.mark.parametrize("line, message", [
    ("rerun", "rerun takes exactly one KIND/NAMESPACE/NAME"),
    ("rerun Promise/a Promise/b", "rerun takes exactly one KIND/NAMESPACE/NAME"),
    ("status Promise/a Promise/b", "status takes at most one KIND/NAMESPACE/NAME"),
    ("apply now", "apply takes no arguments"),
    ("ok-to-test abc123", "ok-to-test takes no arguments"),
    ("unlock Promise/a", "unlock takes no arguments"),
    ("help plan", "help takes no arguments"),
])
def test_wrong_numbers_of_arguments(line, message):
    [problem] = parse(f"/promisebot {line}").problems
    assert (problem.kind, problem.message, problem.suggestion) == ("arity", message, line.split()[0])
    assert parse(f"/promisebot {line}").commands == ()


def test_arguments_within_the_arity():
    refs = " ".join(f"{APP}/default/app-{i}" for i in range(20))
    [plan] = parse(f"/promisebot plan {refs}").commands
    assert len(plan.args) == 20
    assert parse("/promisebot status").commands[0].args == ()
    assert parse("/promisebot status Destination/prod").commands[0].args == (ObjectRef("Destination", "", "prod"),)
    assert parse(f"/promisebot rerun {APP}/team-a/db").commands[0].args == (ObjectRef(APP, "team-a", "db"),)


@pytest.mark.parametrize("text, ref", [
    (f"{APP}/default/my-app", ObjectRef(APP, "default", "my-app")),
    ("Promise/redis", ObjectRef("Promise", "", "redis")),
    ("Destination/prod.eu-1", ObjectRef("Destination", "", "prod.eu-1")),
    ("Redis.marketplace.kratix.io/ns1/r.1", ObjectRef("Redis.marketplace.kratix.io", "ns1", "r.1")),
    ("a/b/" + LONG_NAME, ObjectRef("a", "b", LONG_NAME)),
])
def test_valid_object_refs(text, ref):
    assert parse_object_ref(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize("text, message", [
    ("redis", "expected KIND/NAMESPACE/NAME"),
    ("a/b/c/d", "expected KIND/NAMESPACE/NAME"),
    ("Kind/Default/name", "the namespace must be a DNS label"),
    ("Kind//name", "the namespace must be a DNS label"),
    ("Kind/" + "n" * 64 + "/name", "the namespace must be a DNS label"),
    ("Kind/ns/My_App", "the name must be a DNS subdomain"),
    ("Kind/ns/-app", "the name must be a DNS subdomain"),
    ("Kind/ns/app.", "the name must be a DNS subdomain"),
    ("Kind/ns/" + LONG_NAME + "c", "the name must be a DNS subdomain"),
    ("Kind/ns/" + "c" * 64, "the name must be a DNS subdomain"),
    ("Kind/", "the name must be a DNS subdomain"),
    ("1App/ns/n", "the kind must be a Kubernetes kind"),
    ("/ns/n", "the kind must be a Kubernetes kind"),
    ("App-x/ns/n", "the kind must be a Kubernetes kind"),
    ("App.Example.io/ns/n", "the kind's API group must be a DNS subdomain"),
    ("App./ns/n", "the kind's API group must be a DNS subdomain"),
    ("$(rm/-rf/x)", "the kind must be a Kubernetes kind"),
    ("Kind/ns/`id`", "the name must be a DNS subdomain"),
])
def test_malformed_object_refs(text, message):
    with pytest.raises(RefError) as caught:
        parse_object_ref(text)
    assert str(caught.value).startswith(message)
    [problem] = parse(f"/promisebot rerun {text}").problems
    assert problem.kind == "argument"
    assert problem.text == text[:MAX_QUOTE_CHARS] + ("…" if len(text) > MAX_QUOTE_CHARS else "")
    assert problem.message.startswith(f"bad argument of rerun: {message}")
    assert text not in problem.message  # the user's text is never in the message


def test_each_bad_argument_is_a_problem_and_the_command_does_not_run():
    parsed = parse("/promisebot plan Promise/ok bad Kind/NS/x")
    assert parsed.commands == ()
    assert [p.text for p in parsed.problems] == ["bad", "Kind/NS/x"]


def test_object_ref_as_the_model_ref():
    assert ObjectRef(APP, "default", "a").as_ref() == Ref(APP, "a", "default")
    assert ObjectRef("Promise", "", "redis").as_ref() == Ref("Promise", "redis")


def test_too_many_commands():
    body = "\n".join(["/promisebot status"] * (MAX_COMMANDS + 3))
    parsed = parse(body)
    assert len(parsed.commands) == MAX_COMMANDS
    [problem] = parsed.problems
    assert (problem.kind, problem.line) == ("too-many", MAX_COMMANDS + 1)


def test_too_many_counts_lines_addressed_to_the_bot_not_other_lines():
    body = "\n".join(["text"] * 50 + ["/promisebot plan"] * MAX_COMMANDS)
    assert len(parse(body).commands) == MAX_COMMANDS
    assert parse(body).problems == ()


def test_an_overlong_command_line_is_refused_and_quoted_short():
    long_line = "/promisebot plan " + " ".join(["Promise/x"] * 200)
    assert len(long_line) > MAX_LINE_CHARS
    parsed = parse(f"{long_line}\n/promisebot status")
    assert names(f"{long_line}\n/promisebot status") == ["status"]
    [problem] = parsed.problems
    assert problem.kind == "too-long"
    assert len(problem.text) == MAX_QUOTE_CHARS + 1 and problem.text.endswith("…")


def test_an_overlong_line_that_is_not_a_command_is_no_problem():
    assert parse("x" * 100_000 + "\n/promisebot plan").commands == (Command("plan", (), 2),)


def test_commands_are_the_documented_ones():
    assert COMMANDS == ("plan", "apply", "status", "rerun", "ok-to-test", "unlock", "help")
    assert [names(f"/promisebot {c}") for c in COMMANDS if c != "rerun"] == [[c] for c in COMMANDS if c != "rerun"]
