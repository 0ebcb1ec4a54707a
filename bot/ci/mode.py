"""What `promisebot ci --mode` runs for an event (pure).

    event kind                      auto       plan                       reconcile
    push (default branch)           job        dry run: plan the pushed   job
                                               range, write nothing
    change_opened / change_updated  job        job                        refused
    change_merged                   job        refused                    job (the apply)
    change_closed, comment          job        refused                    refused
    ignored                         nothing (exit 0, the reason printed), whatever the mode

"job" is `bot.jobs.handlers.handle`, the webhook path's job for the same event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.forges.base import Event

Mode = Literal["auto", "plan", "reconcile"]
MODES: tuple[Mode, ...] = ("auto", "plan", "reconcile")
Action = Literal["job", "dry-run", "nothing", "refused"]

_WHAT = {"push": "a push to the default branch", "change_opened": "a pull/merge request",
         "change_updated": "a pull/merge request", "change_merged": "a merged pull/merge request",
         "change_closed": "a pull/merge request closed without merge", "comment": "a comment"}


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    why: str = ""  # the reason: of "nothing" (the event's), of "refused" (for the user)


def decide(event: Event, mode: Mode) -> Decision:
    if event.kind == "ignored" or event.repo is None:
        return Decision("nothing", event.reason or "no repository")
    if mode == "auto":
        return Decision("job")
    if mode == "plan":
        if event.kind == "push":
            return Decision("dry-run")
        if event.kind in ("change_opened", "change_updated"):
            return Decision("job")
    elif event.kind in ("push", "change_merged"):
        return Decision("job")
    accepts = ("a pull/merge request (plan and comment) or a push (a dry-run plan of the pushed range)"
               if mode == "plan" else "a push to the default branch or a merged pull/merge request")
    note = (" (a pull/merge request is planned; it is reconciled once merged)"
            if mode == "reconcile" and event.kind in ("change_opened", "change_updated") else "")
    return Decision("refused", f"--mode {mode} cannot run on {_WHAT.get(event.kind, event.kind)}{note}: it "
                               f"takes {accepts}; --mode auto does what the event asks")
