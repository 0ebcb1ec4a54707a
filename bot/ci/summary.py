"""What a CI run reports (pure): the job summary (markdown, appended to `$GITHUB_STEP_SUMMARY`),
the step outputs (appended to `$GITHUB_OUTPUT`) and the lines printed to the job log.

    has-changes=true|false   the plan would change a Destination / the reconcile wrote a store
    comment-url=URL          the plan comment (or the reply) on the pull/merge request; "" if none
    status=STATE             the commit status promisebot set: success, failure, error, pending; ""
"""

from __future__ import annotations

from bot.ci.outcome import Outcome

SUMMARY_LIMIT = 512 * 1024  # GitHub takes up to 1 MiB of summary per step
_ICONS = {"success": "✅", "failure": "❌", "error": "⚠️", "pending": "⏳"}
_HIDDEN = "<!-- promisebot:"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def visible(body: str) -> str:
    """A comment body without the bot's hidden marker lines."""
    return "\n".join(line for line in body.splitlines() if not line.strip().startswith(_HIDDEN)).strip("\n")


def render_summary(outcome: Outcome, *, run_url: str = "") -> str:
    rows = [("result", outcome.result)]
    if outcome.state:
        rows.append(("status", f"{_ICONS.get(outcome.state, '')} {outcome.state}: {outcome.description}".strip()))
    rows.append(("changes", "yes" if outcome.has_changes else "no"))
    if outcome.comment_url:
        rows.append(("comment", f"[{outcome.comment_url}]({outcome.comment_url})"))
    if run_url:
        rows.append(("run", run_url))
    lines = [f"### promisebot: {_cell(outcome.title)}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    lines.append("")
    if outcome.details:
        lines += [outcome.details.rstrip("\n"), ""]
    if outcome.comment_body:
        lines += ["<details><summary>The comment</summary>", "", visible(outcome.comment_body), "", "</details>", ""]
    text = "\n".join(lines) + "\n"
    if len(text) > SUMMARY_LIMIT:
        text = text[:SUMMARY_LIMIT - 200].rstrip() + "\n\n_(cut: the summary was longer than a step may show; "
        text += "the comment has it all)_\n"
    return text


def render_outputs(outcome: Outcome) -> str:
    """Lines for `$GITHUB_OUTPUT` (`name=value`: no value holds a newline)."""
    values = {"has-changes": "true" if outcome.has_changes else "false", "comment-url": outcome.comment_url,
              "status": outcome.state}
    return "".join(f"{name}={' '.join(value.split())}\n" for name, value in values.items())


def render_text(outcome: Outcome) -> str:
    """The lines printed to the job's log."""
    lines = [f"promisebot ci: {outcome.title}: {outcome.result}"]
    if outcome.state:
        lines.append(f"  status: {outcome.state}" + (f" ({outcome.description})" if outcome.description else ""))
    lines.append(f"  changes: {'yes' if outcome.has_changes else 'no'}")
    if outcome.comment_url:
        lines.append(f"  comment: {outcome.comment_url}")
    return "\n".join(lines)
