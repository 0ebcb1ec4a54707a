"""The markdown of the bot's replies to ChatOps commands: pure functions, no I/O.

Every reply starts with `REPLY_MARKER` (distinct from the plan comment's marker, so the plan
comment is never mistaken for a reply nor a reply for it) and addresses the commenter
(`@login`, the one mention a reply makes). Replies:

- `render_help`: the commands, which ones this commenter may run, and what the others need;
- `render_denied`: the commenter may not run a command, and what it needs;
- `render_problems`: the lines of a comment that are not valid commands (grammar `Problem`s),
  with the closest command, then the help;
- `render_unmet`: every apply requirement not met yet;
- `render_ok_to_test`: ok-to-test accepted for a commit;
- `render_lock_held`: another change (its URL or number) holds the lock;
- `render_unknown_object`: an argument names no object of the platform, with the closest names;
- `render_policy_error`: a command refused because `.promisebot.yaml` is invalid.

User text (the lines and arguments quoted back) is shown in code spans whose backtick fence is
longer than any run of backticks inside, on one line; every `@` of quoted text is followed by a
zero-width space, so a reply never mentions anyone its text names, and HTML is shown, not
interpreted. Each renderer takes the `secrets` to redact and passes its text through
`bot.redact.redact` last (which also redacts every credential recognisable by its shape).
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterable, Mapping, Sequence

from bot.chatops.grammar import COMMANDS, PREFIX, SUMMARY, USAGE, Problem
from bot.chatops.policy import Decision, PolicyError, describe
from bot.chatops.requirements import SHORT_SHA, Unmet
from bot.redact import redact
from bot.report.markdown import code_span, fenced

REPLY_MARKER = "<!-- promisebot:reply -->"
MAX_CLOSEST = 3  # closest object names shown for an unknown one

_LOGIN_CHARS = re.compile(r"[^A-Za-z0-9._\-\[\]]")
_CHANGE = re.compile(r"https?://[^\s<>()\[\]`]+|[#!]\d+")
_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
_ZWSP = "\u200b"


def render_help(login: str, decisions: Mapping[str, Decision] | None = None,
                secrets: Iterable[str] = ()) -> str:
    """The commands; with `decisions` (command -> this commenter's Decision), which of them
    the commenter may run and what the others need."""
    lines = [_opening(login, "promisebot's commands, one per line of a comment (several lines run in order):"), ""]
    lines += _help_table(decisions)
    return _finish(lines, secrets)


def render_denied(login: str, command: str, decision: Decision, secrets: Iterable[str] = ()) -> str:
    """`command` was refused: the commenter lacks what `decision.needs` says."""
    needs = decision.needs or "permission this commenter does not have"
    lines = [_opening(login, f"{_code(command)} needs {_plain(needs)}; nothing was done.")]
    return _finish(lines, secrets)


def render_problems(login: str, problems: Sequence[Problem], decisions: Mapping[str, Decision] | None = None,
                    secrets: Iterable[str] = ()) -> str:
    """The lines of a comment promisebot could not run, each with what is wrong and the closest
    command or the usage, then the help (with `decisions`, as in `render_help`)."""
    lines = [_opening(login, "promisebot could not run these lines of your comment:"), ""]
    for problem in problems:
        lines.append(f"- line {problem.line}: {_code(problem.text)}: {_plain(problem.message)}{_hint(problem)}")
    lines += ["", "<details><summary>Commands</summary>", ""] + _help_table(decisions) + ["", "</details>"]
    return _finish(lines, secrets)


def render_unmet(login: str, unmet: Sequence[Unmet], command: str = "apply", secrets: Iterable[str] = ()) -> str:
    """`command` waits for every requirement in `unmet`."""
    count = len(unmet)
    head = (f"{_code(command)} cannot run yet: {count} requirement{'s' * (count != 1)} "
            f"{'are' if count != 1 else 'is'} not met:")
    lines = [_opening(login, head), ""]
    for item in unmet:
        lines.append(f"- **{_plain(item.requirement)}**: {_plain(item.reason)}")
    return _finish(lines, secrets)


def render_ok_to_test(login: str, sha: str, secrets: Iterable[str] = ()) -> str:
    """ok-to-test accepted for commit `sha`."""
    commit = _code(sha[:SHORT_SHA] if _SHA.fullmatch(sha) else sha)
    lines = [_opening(login, f"ok-to-test: promisebot will plan commit {commit} of this change. A later "
                      f"push needs another {_code(PREFIX + ' ok-to-test')}.")]
    return _finish(lines, secrets)


def render_lock_held(login: str, holder: str, destinations: Sequence[str] = (), command: str = "apply",
                     secrets: Iterable[str] = ()) -> str:
    """`command` waits in the queue: the change `holder` (a URL, `#12` or `!12`) holds the lock
    of `destinations` (its apply is in progress)."""
    what = ("Destination" + "s" * (len(destinations) != 1) + " " + ", ".join(_code(d) for d in destinations)
            if destinations else "the platform")
    lines = [_opening(login, f"{_code(command)} waits: {what} {'are' if len(destinations) > 1 else 'is'} locked by "
                      f"{_change(holder)}, whose apply is in progress. It runs once the lock is released (that "
                      f"change applied or closed, or {_code(PREFIX + ' unlock')} once it is gone).")]
    return _finish(lines, secrets)


def render_replanned(login: str, why: str, command: str = "apply", secrets: Iterable[str] = ()) -> str:
    """`command` did not run: the plan was stale (`why`), so the change was planned again, for
    the reviewers to look at before asking again."""
    return _finish([_opening(login, f"{_code(command)} did not run: {_plain(why)}. promisebot planned the "
                             f"change again (see the plan comment); review it, then comment "
                             f"{_code(PREFIX + ' ' + command)} again.")], secrets)


def render_failed(login: str, command: str, message: str, secrets: Iterable[str] = ()) -> str:
    """`command` could not finish (the forge refused a merge, a fetch failed, ...): why, in a
    fenced block that the message cannot close."""
    lines = [_opening(login, f"{_code(command)} could not finish:"), "", fenced(_neutralize(message.rstrip()), "text")]
    return _finish(lines, secrets)


def render_not_open(login: str, command: str, state: str, secrets: Iterable[str] = ()) -> str:
    """`command` needs an open change; this one is `state` (closed, merged)."""
    return _finish([_opening(login, f"{_code(command)}: this change is {_plain(state)}; nothing was done.")], secrets)


def render_status(login: str, table: Sequence[str], messages: Mapping[str, str],
                  secrets: Iterable[str] = ()) -> str:
    """Where the objects landed (`table`: markdown lines, `bot.forges.comment.render_landed`)
    and each object's reconcile message."""
    if not table:
        return _finish([_opening(login, "this change touches no object promisebot keeps records of.")], secrets)
    lines = [_opening(login, "where this change's objects stand:"), "", *table]
    lines += [f"- {_code(ref)}: {_plain(message)}" for ref, message in sorted(messages.items()) if message]
    return _finish(lines, secrets)


def render_rerun(login: str, ref: str, state: str, description: str, table: Sequence[str],
                 secrets: Iterable[str] = ()) -> str:
    """The workflows of `ref` ran again: the outcome (a commit status state and description)
    and where it landed."""
    lines = [_opening(login, f"reran {_code(ref)}: {_plain(state)}, {_plain(description)}."), "", *table]
    return _finish(lines, secrets)


def render_unlocked(login: str, released: Sequence[str], secrets: Iterable[str] = ()) -> str:
    """The Destination locks `unlock` released (those this change held, and those held by
    changes that are gone)."""
    if not released:
        return _finish([_opening(login, "no lock to release: this change holds none, and the changes holding "
                                 "the Destinations it touches are still open.")], secrets)
    names = ", ".join(_code(d) for d in released)
    return _finish([_opening(login, f"released the lock of {names}.")], secrets)


def render_unknown_object(login: str, command: str, ref: str, known: Iterable[str],
                          secrets: Iterable[str] = ()) -> str:
    """An argument of `command` names no object of the platform; the closest of `known` shown."""
    closest = difflib.get_close_matches(ref, sorted(set(known)), n=MAX_CLOSEST, cutoff=0.6)
    lines = [_opening(login, f"{_code(command)}: the platform has no object {_code(ref)}; nothing was done.")]
    if closest:
        lines += ["", "Closest: " + ", ".join(_code(name) for name in closest) + "."]
    else:
        lines += ["", f"{_code(PREFIX + ' status')} lists the objects this change touches."]
    return _finish(lines, secrets)


def render_policy_error(login: str, command: str, error: PolicyError, secrets: Iterable[str] = ()) -> str:
    """`command` was refused because the policy file on the default branch is invalid."""
    lines = [_opening(login, f"{_code(command)} was refused: the ChatOps policy (.promisebot.yaml on the "
                      "default branch) is invalid; nothing was done:"), ""]
    for problem in error.problems:
        lines.append(f"- {_code(describe(problem))}")
    return _finish(lines, secrets)


# -- helpers --------------------------------------------------------------------------------

def _opening(login: str, text: str) -> str:
    mention = _mention(login)
    return f"{REPLY_MARKER}\n{mention}: {text}" if mention else f"{REPLY_MARKER}\n{text[:1].upper()}{text[1:]}"


def _mention(login: str) -> str:
    """`@login` of the commenter, keeping only the characters a forge login has."""
    cleaned = _LOGIN_CHARS.sub("", login)
    return f"@{cleaned}" if cleaned else ""


def _hint(problem: Problem) -> str:
    if problem.suggestion is None or problem.suggestion not in USAGE:
        return f". {_code(PREFIX + ' help')} lists the commands." if problem.kind == "unknown" else "."
    usage = _code(f"{PREFIX} {USAGE[problem.suggestion]}")
    if problem.kind == "unknown":
        return f". Did you mean {usage}?"
    if problem.kind == "empty":
        return f". Try {usage}."
    return f". Usage: {usage}."


def _help_table(decisions: Mapping[str, Decision] | None) -> list[str]:
    if decisions is None:
        lines = ["| command | what it does |", "|---|---|"]
        return lines + [f"| {_code(PREFIX + ' ' + USAGE[c], table=True)} | {_plain(SUMMARY[c])} |"
                        for c in COMMANDS]
    lines = ["| command | what it does | you |", "|---|---|---|"]
    for command in COMMANDS:
        decision = decisions.get(command)
        if decision is None:
            you = "unknown"
        elif decision.allowed:
            you = "allowed"
        else:
            you = "needs " + (decision.needs or "permission you do not have")
        lines.append(f"| {_code(PREFIX + ' ' + USAGE[command], table=True)} | {_plain(SUMMARY[command])} "
                     f"| {_plain(you)} |")
    return lines


def _change(holder: str) -> str:
    """A change named by its URL (shown as a link) or number (`#12`, `!12`, which the forge links)."""
    holder = holder.strip()
    if _CHANGE.fullmatch(holder):
        return holder
    return f"change {_code(holder)}" if holder else "another change"


def _neutralize(text: str) -> str:
    """No `@` of `text` can mention anyone."""
    return text.replace("@", "@" + _ZWSP)


def _plain(text: str) -> str:
    """Text shown as plain text on one line (also in a table cell): HTML shown, markdown
    emphasis, links, code and cell separators inert."""
    text = html.escape(" ".join(str(text).split()), quote=False)
    text = re.sub(r"([\\`*_\[\]|~])", r"\\\1", text)
    return _neutralize(text)


def _code(text: str, *, table: bool = False) -> str:
    """A code span holding `text` verbatim on one line, no `@` of it mentioning anyone."""
    return code_span(_neutralize(str(text)), table=table, empty="` `")


def _finish(lines: list[str], secrets: Iterable[str]) -> str:
    return redact("\n".join(lines).rstrip("\n") + "\n", list(secrets))
