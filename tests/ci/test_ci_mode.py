"""What `promisebot ci --mode` runs for each kind of event (bot/ci/mode.py, pure)."""

from __future__ import annotations

import pytest

from bot.ci.mode import decide
from bot.forges.base import Event, Repo

REPO = Repo("github", "acme/platform", "https://github.com/acme/platform.git", "main")


def event(kind: str) -> Event:
    return Event(forge="github", kind=kind, delivery="1-1", repo=REPO, number=3,
                 reason="push to branch feature" if kind == "ignored" else "")


@pytest.mark.parametrize("kind, auto, plan, reconcile", [
    ("push", "job", "dry-run", "job"),
    ("change_opened", "job", "job", "refused"),
    ("change_updated", "job", "job", "refused"),
    ("change_merged", "job", "refused", "job"),
    ("change_closed", "job", "refused", "refused"),
    ("comment", "job", "refused", "refused"),
    ("ignored", "nothing", "nothing", "nothing"),
])
def test_what_each_mode_runs(kind, auto, plan, reconcile):
    assert [decide(event(kind), mode).action for mode in ("auto", "plan", "reconcile")] == [auto, plan, reconcile]


def test_refusals_say_why_and_what_would_do():
    why = decide(event("change_opened"), "reconcile").why
    assert why == ("--mode reconcile cannot run on a pull/merge request (a pull/merge request is planned; it is "
                   "reconciled once merged): it takes a push to the default branch or a merged pull/merge "
                   "request; --mode auto does what the event asks")
    assert decide(event("comment"), "plan").why.startswith("--mode plan cannot run on a comment: it takes a "
                                                            "pull/merge request (plan and comment) or a push")


def test_an_ignored_event_says_why():
    assert decide(event("ignored"), "auto").why == "push to branch feature"
    assert decide(Event(forge="gitlab", kind="push", delivery="d"), "auto").why == "no repository"
