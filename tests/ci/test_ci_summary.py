"""A CI run's outcome from what its job told the forge, and what is reported of it: the job
summary, the step outputs, the exit code (bot/ci/outcome.py, bot/ci/summary.py; pure)."""

from __future__ import annotations

from bot.ci.journal import CommentWrite, Journal, StatusWrite
from bot.ci.outcome import Outcome, exit_code, job_outcome
from bot.ci.summary import SUMMARY_LIMIT, render_outputs, render_summary, render_text, visible
from bot.forges.base import Event, Repo
from bot.forges.comment import MARKER, PlanFacts, facts_line

HEAD, MERGE, AFTER = "a" * 40, "m" * 40, "c" * 40
GITHUB = Repo("github", "acme/platform", "https://github.com/acme/platform.git", "main")
GITLAB = Repo("gitlab", "acme/platform", "https://gitlab.example/acme/platform.git", "main", 7)
PULL = Event(forge="github", kind="change_opened", delivery="1-1", repo=GITHUB, number=3, head_sha=HEAD,
             url="https://github.com/acme/platform/pull/3")


def plan_body(head: str, destinations: tuple[str, ...]) -> str:
    return "\n".join([MARKER, facts_line(PlanFacts(head, "b" * 40, destinations)), "### promisebot plan", "",
                      "| State store | Destination |"])


def test_a_plan_with_changes():
    journal = Journal([StatusWrite(HEAD, "promisebot/plan", "pending", "planning"),
                       StatusWrite(HEAD, "promisebot/plan", "success", "1 added; 1 pipeline ran")],
                      [CommentWrite(3, 11, plan_body(HEAD, ("dev",)))])
    outcome = job_outcome(PULL, f"planned {HEAD[:12]}: success", journal)
    assert outcome == Outcome(title=f"plan of #3 at `{HEAD[:12]}`", result=f"planned {HEAD[:12]}: success",
                              state="success", description="1 added; 1 pipeline ran", has_changes=True, plan=True,
                              comment_url="https://github.com/acme/platform/pull/3#issuecomment-11",
                              comment_body=plan_body(HEAD, ("dev",)))
    assert (exit_code(outcome, detailed=False), exit_code(outcome, detailed=True)) == (0, 2)
    assert render_outputs(outcome) == ("has-changes=true\ncomment-url=https://github.com/acme/platform/pull/3"
                                       "#issuecomment-11\nstatus=success\n")


def test_a_plan_without_changes_read_back_from_the_unchanged_comment():
    journal = Journal([StatusWrite(HEAD, "promisebot/plan", "success", "no state store changes")])
    outcome = job_outcome(PULL, "planned", journal, comment=CommentWrite(3, 12, plan_body(HEAD, ())))
    assert (outcome.has_changes, outcome.comment_url) == (False, "https://github.com/acme/platform/pull/3#issuecomment-12")
    assert exit_code(outcome, detailed=True) == 0


def test_a_comment_about_another_head_says_nothing_of_changes():
    journal = Journal([StatusWrite(HEAD, "promisebot/plan", "success", "")], [CommentWrite(3, 11, plan_body("x" * 40, ("dev",)))])
    assert not job_outcome(PULL, "planned", journal).has_changes


def test_failure_and_error_fail():
    for state in ("failure", "error"):
        journal = Journal([StatusWrite(HEAD, "promisebot/plan", state, "1 pipeline failed")])  # type: ignore[arg-type]
        outcome = job_outcome(PULL, "planned", journal)
        assert outcome.failed and exit_code(outcome, detailed=True) == 1
    assert job_outcome(PULL, "error: could not fetch", Journal()).failed


def test_a_push_has_changes_when_it_wrote_a_store():
    push = Event(forge="gitlab", kind="push", delivery="d", repo=GITLAB, before=HEAD, after=AFTER)
    journal = Journal([StatusWrite(AFTER, "promisebot/apply", "success", "applied: 2 state store commit(s)")])
    outcome = job_outcome(push, f"reconciled {AFTER[:12]}: 2 store commit(s)", journal, details="#### Where it landed")
    assert (outcome.has_changes, outcome.plan, outcome.state, outcome.title) == (
        True, False, "success", f"reconcile of main at `{AFTER[:12]}`")
    assert exit_code(outcome, detailed=True) == 0, "--detailed-exitcode is about plans"
    assert not job_outcome(push, "reconciled x: 0 store commit(s)", journal).has_changes


def test_a_merge_request_note_url():
    mr = Event(forge="gitlab", kind="change_opened", delivery="d", repo=GITLAB, number=5, head_sha=HEAD,
               url="https://gitlab.example/acme/platform/-/merge_requests/5")
    outcome = job_outcome(mr, "planned", Journal([], [CommentWrite(5, 99, plan_body(HEAD, ("dev",)))]))
    assert outcome.comment_url == "https://gitlab.example/acme/platform/-/merge_requests/5#note_99"
    assert outcome.title == f"plan of !5 at `{HEAD[:12]}`"


def test_an_apply_and_a_comment():
    merged = Event(forge="github", kind="change_merged", delivery="d", repo=GITHUB, number=3, head_sha=HEAD,
                   merge_sha=MERGE, url=PULL.url)
    journal = Journal([StatusWrite(MERGE, "promisebot/apply", "success", "applied: 1 state store commit(s)")],
                      [CommentWrite(3, 11, MARKER + "\n### promisebot applied")])
    outcome = job_outcome(merged, "applied x: 1 store commit(s), 1 result(s) reused", journal)
    assert (outcome.title, outcome.has_changes, outcome.comment_url) == (
        f"apply of #3 (merge `{MERGE[:12]}`)", True, f"{PULL.url}#issuecomment-11")

    comment = Event(forge="github", kind="comment", delivery="d", repo=GITHUB, number=3, commenter="alice",
                    url=PULL.url)
    reply = Journal([], [CommentWrite(3, 20, "<!-- promisebot:reply -->\n@alice: `apply` needs write access")])
    outcome = job_outcome(comment, "apply: denied", reply)
    assert (outcome.title, outcome.failed, outcome.plan, outcome.comment_url) == (
        "comment on #3 by @alice", False, False, f"{PULL.url}#issuecomment-20")
    assert job_outcome(comment, "rerun: could not finish: boom", reply).failed


def test_the_summary():
    outcome = Outcome(title="plan of #3 at `aaaa`", result="planned aaaa: success", state="success",
                      description="1 added | 0 changed", has_changes=True, plan=True,
                      comment_url="https://x/pull/3#issuecomment-1", comment_body=plan_body(HEAD, ("dev",)))
    summary = render_summary(outcome, run_url="https://github.com/acme/platform/actions/runs/42")
    assert summary.splitlines()[:9] == [
        "### promisebot: plan of #3 at `aaaa`", "", "| | |", "|---|---|",
        "| result | planned aaaa: success |", "| status | ✅ success: 1 added \\| 0 changed |", "| changes | yes |",
        "| comment | [https://x/pull/3#issuecomment-1](https://x/pull/3#issuecomment-1) |",
        "| run | https://github.com/acme/platform/actions/runs/42 |"]
    assert "<details><summary>The comment</summary>\n\n### promisebot plan" in summary
    assert "<!-- promisebot:" not in summary
    assert render_text(outcome).splitlines() == [
        "promisebot ci: plan of #3 at `aaaa`: planned aaaa: success", "  status: success (1 added | 0 changed)",
        "  changes: yes", "  comment: https://x/pull/3#issuecomment-1"]


def test_a_long_summary_is_cut():
    outcome = Outcome(title="t", result="r", comment_body="x\n" * SUMMARY_LIMIT)
    summary = render_summary(outcome)
    assert len(summary) <= SUMMARY_LIMIT and summary.endswith("the comment has it all)_\n")


def test_outputs_hold_one_line_each():
    outcome = Outcome(title="t", result="r", state="error", comment_url="")
    assert render_outputs(outcome) == "has-changes=false\ncomment-url=\nstatus=error\n"


def test_visible():
    assert visible(plan_body(HEAD, ())) == "### promisebot plan\n\n| State store | Destination |"
