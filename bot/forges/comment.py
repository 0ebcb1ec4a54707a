"""The bot's comment on a pull/merge request and its commit status: pure functions of a
`ReconcileReport` (no I/O; the job functions post what these return through a `Forge`).

One comment per PR/MR, found again by `MARKER` (`find_own`) and edited in place:

- `render_plan`: summary first (per state store and Destination: files added, changed,
  removed; workflow runs: ran, failed, cached), then validation errors as `file:line field:
  reason`, refused outputs, failing pipelines (pipeline, container, reason, log tail) and the
  per-Destination diffs, each inside `<details>`;
- `render_applied`: after the merge, what landed where (per state store: commit, Destinations,
  files) or the write errors, with the reviewed plan kept below, collapsed;
- `render_error`: promisebot could not finish.

Every text is redacted (`bot.redact.redact`: the known secrets, the `secrets` given, and every
credential recognisable by its shape), and the values of Kubernetes `Secret` objects in diffs
are masked (`bot.report.diffs.mask_secret_values`).

A body longer than the forge's limit (`GITHUB_COMMENT_LIMIT`, `GITLAB_COMMENT_LIMIT`) is cut by
`split` into parts, each a comment of its own, at block boundaries (between files' diffs and
`<details>` blocks), never inside a code fence; a `<details>` open at a cut is closed and opened
again, "(continued)", in the next part. Each part carries a hidden `<!-- promisebot:plan part
i/n -->` marker (`find_parts`), the first also `MARKER`.

`status_for` gives the aggregate `promisebot/plan` commit status of a report.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.forges.base import Comment, StatusState
from bot.kratix.conditions import READY, RECONCILED, find_condition
from bot.reconcile.engine import ReconcileReport
from bot.reconcile.run import Outcome
from bot.reconcile.writes import StoreBatch, store_key
from bot.redact import redact
from bot.report.diffs import ACTIONS, Action, by_destination, counts, unified_masked, written_by_destination
from bot.report.landed import Landed
from bot.report.markdown import code_span, fenced
from bot.report.outcomes import failures, runs_json

MARKER = "<!-- promisebot:plan -->"
PLAN_CONTEXT = "promisebot/plan"
APPLY_CONTEXT = "promisebot/apply"
GITHUB_COMMENT_LIMIT = 65_536
GITLAB_COMMENT_LIMIT = 1_000_000
DESCRIPTION_LIMIT = 140  # GitHub's limit for a commit status description
MIN_LIMIT = 2_000  # `split` needs room for a marker, a few open <details> and some content
LOG_LINE_CHARS = 1_000  # a longer log line is cut in a comment

_PART = re.compile(r"<!-- promisebot:plan part (\d+)(?:/(\d+))? -->")
_CONTINUED = re.compile(r"_Continued from the previous comment \(part \d+ of \d+\)\._")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_FENCE_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
_CLOSE_DETAILS = "</details>"
_FACTS = re.compile(r"^<!-- promisebot:facts (\{.*\}) -->$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What a plan was made of: the head planned, the base it was merged onto, the
    Destinations it would change (what an apply locks)."""

    head: str
    base: str
    destinations: tuple[str, ...] = ()


# -- finding the bot's own comments -------------------------------------------------------

def find_own(comments: list[Comment], author: str | None = None) -> Comment | None:
    """The bot's comment (the first beginning with `MARKER`, or the first part of a split one),
    by `author` when given (the bot's own login: anybody can paste the marker)."""
    for comment in comments:
        if part_index(comment.body) == 1 and (author is None or comment.author == author):
            return comment
    return None


def part_index(body: str) -> int | None:
    """Which part of the bot's comment `body` is: 1 for an unsplit comment (it begins with
    `MARKER`) or the first part, i for a body beginning with `<!-- promisebot:plan part i/n -->`,
    None for any other comment (a marker quoted further down does not count)."""
    first = body.lstrip().split("\n", 1)[0].strip()
    match = _PART.fullmatch(first)
    if match:
        return int(match.group(1))
    return 1 if first == MARKER else None


def find_parts(comments: list[Comment], author: str | None = None) -> dict[int, Comment]:
    """The bot's comments by part index (1 = `find_own`), the first of each index, so a job
    edits part i in place, creates the parts that are new, and empties those no longer used
    (`render_unused_part`)."""
    out: dict[int, Comment] = {}
    for comment in comments:
        if author is not None and comment.author != author:
            continue
        index = part_index(comment.body)
        if index is not None:
            out.setdefault(index, comment)
    return out


def part_marker(index: int, total: int) -> str:
    return f"<!-- promisebot:plan part {index}/{total} -->"


def render_unused_part(index: int) -> str:
    """The text of a part an earlier, longer comment needed and the current one does not."""
    return f"<!-- promisebot:plan part {index} -->\n_This part of an earlier promisebot comment is no longer used._"


# -- rendering -------------------------------------------------------------------------------

def touched_destinations(report: ReconcileReport) -> list[str]:
    """The Destinations whose files a plan would add, change or remove."""
    return sorted({dest for batch in report.batches for dest, n in _dest_counts(batch).items() if any(n.values())})


def facts_line(facts: PlanFacts) -> str:
    """The hidden line after `MARKER` that records what a plan was made of, for `apply`."""
    data = {"head": facts.head, "base": facts.base, "destinations": list(facts.destinations)}
    return f"<!-- promisebot:facts {json.dumps(data, sort_keys=True)} -->"


def read_facts(body: str) -> PlanFacts | None:
    """What the plan comment `body` was made of (`facts_line`), None when it has no such line.
    Only the bot's own comment may be read this way (`find_parts(..., author=bot login)`)."""
    match = _FACTS.search(body)
    if not match:
        return None
    try:
        data = json.loads(match.group(1))
        return PlanFacts(str(data["head"]), str(data["base"]), tuple(str(d) for d in data["destinations"]))
    except (ValueError, KeyError, TypeError):
        return None


def render_plan(report: ReconcileReport, *, head_sha: str, base_ref: str, title: str = "", reused: int = 0,
                base_sha: str = "", notes: Sequence[str] = (), secrets: Iterable[str] = ()) -> str:
    """The plan comment of a PR/MR whose head `head_sha` is planned merged onto `base_ref` at
    `base_sha`. `reused`: workflow runs not run again because a saved plan's outputs still
    hold. `notes`: markdown lines shown under the heading (what the plan left out, and why)."""
    heading = "### promisebot plan" + (f": {_esc(title)}" if title else "")
    onto = f"For {code_span(head_sha[:12])} merged onto {code_span(base_ref)}"
    onto += f" at {code_span(base_sha[:12])}." if base_sha else "."
    facts = PlanFacts(head_sha, base_sha, tuple(touched_destinations(report)))
    lines = [MARKER, facts_line(facts), heading, "", onto, ""]
    if notes:
        lines += [*notes, ""]
    lines += _summary_table(report, applied=False)
    lines += _store_notes(report, applied=False)
    lines += _pipelines_line(report, reused)
    lines += _invalid(report) + _refused(report) + _failed(report)
    diffs = [b for b in report.batches if b.diff]
    if diffs:
        lines += ["#### Changes", ""]
        for batch in diffs:
            lines += _batch_diffs(batch)
    lines += _runs(report)
    return _finish(lines, secrets)


def render_applied(plan_text: str | None, report: ReconcileReport, *, merge_sha: str, reused: int = 0,
                   landed: Sequence[Landed] = (), secrets: Iterable[str] = ()) -> str:
    """The comment after the merge `merge_sha` was reconciled: where each object the merge
    changed landed (`landed`: store, commit, Destination, read from bookkeeping, so it is right
    even when an earlier job's reconcile wrote it), per state store the commit this job made,
    the Destinations and files written, or why a store could not be written; the plan that
    was reviewed (`plan_text`: what `render_plan` returned, or its parts joined) below, collapsed."""
    heading = (f"### promisebot applied {code_span(merge_sha[:12])}" if not report.errors
               else f"### promisebot could not write every state store for {code_span(merge_sha[:12])}")
    lines = [MARKER, heading, ""]
    lines += render_landed(landed)
    if landed and not report.changed:
        lines += ["This job wrote nothing: the state stores already held this change "
                  "(written by the commits above).", ""]
    else:
        lines += _summary_table(report, applied=True)
    lines += _store_notes(report, applied=True)
    lines += _pipelines_line(report, reused)
    lines += _invalid(report) + _refused(report) + _failed(report)
    written = [b for b in report.batches if b.result and b.result.revision]
    if written:
        lines += ["#### Files written", ""]
        for batch in written:
            lines += _batch_written(batch)
    lines += _runs(report)
    if plan_text:
        plan = "\n".join(line for line in plan_text.splitlines() if line.strip() != MARKER
                         and not _PART.fullmatch(line.strip()) and not _CONTINUED.fullmatch(line)
                         and not _FACTS.fullmatch(line)).strip("\n")
        lines += ["<details><summary>The plan that was reviewed</summary>", "", plan, "", _CLOSE_DETAILS, ""]
    return _finish(lines, secrets)


def reconciled_message(status: dict[str, Any]) -> str:
    """An object's state in a few words: its Reconciled (else Ready) condition's message."""
    condition = find_condition(status, RECONCILED) or find_condition(status, READY) or {}
    return str(condition.get("message") or status.get("message") or "")


def render_landed(rows: Sequence[Landed]) -> list[str]:
    """The "Where it landed" table: one row per placement of each object (markdown lines)."""
    if not rows:
        return []
    lines = ["#### Where it landed", "", "| Object | Destination | State store | Commit |", "|---|---|---|---|"]
    for row in rows:
        if row.state == "landed" and row.commit:
            where = code_span(row.commit[:12], table=True)
        elif row.state == "pending":
            where = "pending: " + _esc(row.note).replace("|", "\\|")
        else:
            where = _esc(row.note or row.state).replace("|", "\\|")
        cells = [code_span(str(row.ref), table=True), code_span(row.destination, table=True),
                 code_span(row.store, table=True), where]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def render_waiting(head_sha: str, why: str, notes: Sequence[str] = (), *, secrets: Iterable[str] = ()) -> str:
    """The plan comment of a change promisebot may not run pipelines for yet (docs/chatops.md,
    "Trust"): why, and how a user with write access lets it (`ok-to-test`, for this head only)."""
    lines = [MARKER, "### promisebot plan: waiting for approval", "",
             f"promisebot has not run any pipeline for {code_span(head_sha[:12])}: {_esc(why)}. "
             "A user allowed to run `ok-to-test` can comment `/promisebot ok-to-test` to plan this "
             "commit; a new push needs a new approval.", ""]
    lines += [*notes, ""] if notes else []
    return _finish(lines, secrets)


def render_error(message: str, *, secrets: Iterable[str] = ()) -> str:
    """The comment when promisebot could not finish (the status is `error`)."""
    secrets = list(secrets)
    lines = [MARKER, "### promisebot could not finish", "", fenced(redact(message, secrets).rstrip("\n"), "text"), ""]
    return _finish(lines, secrets)


# -- commit status ---------------------------------------------------------------------------

def status_for(report: ReconcileReport, *, reused: int = 0,
               secrets: Iterable[str] = ()) -> tuple[StatusState, str]:
    """The aggregate commit status of a plan (`promisebot/plan`; an applied report reads the
    same for `promisebot/apply`) and its description (at most DESCRIPTION_LIMIT characters):
    failure when something must be fixed in the change (an invalid object, a failed pipeline, an
    output no store can take), error when a state store could not be read or written (the plan
    is incomplete, or the write is retried), success otherwise. `error` for a run that could
    not finish at all is the caller's."""
    secrets = list(secrets)
    failed = sum(1 for o in report.outcomes if o.state == "failed")
    problems = []
    if report.invalid:
        problems.append(_n(len(report.invalid), "validation error"))
    if failed:
        problems.append(_n(failed, "pipeline") + " failed")
    if report.refused:
        problems.append(_n(len(report.refused), "output") + " refused")
    if problems:
        return "failure", _description(", ".join(problems) + "; " + _change_summary(report), secrets)
    if report.errors:
        return "error", _description(f"{_n(len(report.errors), 'state store')} failed: {report.errors[0]}", secrets)
    ran = _n(len(report.outcomes), "pipeline") + " ran" + (f", {reused} cached" if reused else "")
    return "success", _description(f"{_change_summary(report)}; {ran}", secrets)


def _change_summary(report: ReconcileReport) -> str:
    totals = dict.fromkeys(ACTIONS, 0)
    destinations = set()
    for batch in report.batches:
        for dest, n in _dest_counts(batch).items():
            destinations.add((store_key(batch.store), dest))
            for action in ACTIONS:
                totals[action] += n[action]
    if not destinations:
        return "no state store changes"
    return (f"{totals['add']} added, {totals['modify']} changed, {totals['remove']} removed in "
            + _n(len(destinations), "Destination"))


def _description(text: str, secrets: list[str]) -> str:
    text = " ".join(redact(text, secrets).split())
    return text if len(text) <= DESCRIPTION_LIMIT else text[:DESCRIPTION_LIMIT - 1] + "…"


# -- sections --------------------------------------------------------------------------------

def _dest_counts(batch: StoreBatch) -> dict[str, dict[Action, int]]:
    """Files per Destination of a batch: from its write when it was written, else its diff."""
    if batch.result is not None:
        return {dest: {a: len(paths[a]) for a in ACTIONS} for dest, paths in written_by_destination(batch).items()}
    return {dest: counts(diffs) for dest, diffs in by_destination(batch).items()}


def _summary_table(report: ReconcileReport, *, applied: bool) -> list[str]:
    rows = []
    for batch in report.batches:
        commit = batch.result.revision if batch.result and batch.result.revision else ""
        for dest, n in _dest_counts(batch).items():
            cells = [code_span(store_key(batch.store), table=True)]
            if applied:
                cells.append(code_span(commit[:12], table=True) if commit else "")
            cells += [code_span(dest, table=True), str(n["add"]), str(n["modify"]), str(n["remove"])]
            rows.append("| " + " | ".join(cells) + " |")
    if not rows:
        nothing = ("No state store changed: they already held this." if applied
                   else "No state store would change.")
        return [nothing, ""]
    head = ["State store", *(["Commit"] if applied else []), "Destination", "Added", "Changed", "Removed"]
    align = ["---", *(["---"] if applied else []), "---", "--:", "--:", "--:"]
    return ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|", *rows, ""]


def _store_notes(report: ReconcileReport, *, applied: bool) -> list[str]:
    lines = []
    for batch in report.batches:
        key = code_span(store_key(batch.store))
        if batch.error:
            why = "could not be written (retried by the next reconcile)" if applied else \
                "could not be read: its plan is incomplete"
            lines.append(f"- **{key} {why}:** {_esc(batch.error)}")
        if batch.pending:
            p = batch.pending
            lines.append(f"- {key}: includes a write that failed since {_esc(p.since)} "
                         f"({_n(p.attempts, 'attempt')}): {_esc(p.error)}")
    return [*lines, ""] if lines else []


def _pipelines_line(report: ReconcileReport, reused: int) -> list[str]:
    states = [o.state for o in report.outcomes]
    text = f"**Pipelines:** {len(states)} ran, {states.count('failed')} failed"
    if states.count("suspended"):
        text += f", {states.count('suspended')} suspended (to be resumed)"
    text += f", {reused} cached (reused from the saved plan)." if reused else "."
    return [text, ""]


def _invalid(report: ReconcileReport) -> list[str]:
    if not report.invalid:
        return []
    lines = [f"#### Validation errors ({len(report.invalid)}; not acted on)", ""]
    for p in report.invalid:
        where = code_span(f"{p['file']}:{p['line']}")
        fld = f" {code_span(p['field'])}" if p.get("field") else ""
        obj = f" ({code_span(p['object'])})" if p.get("object") else ""
        lines.append(f"- {where}{fld}: {_esc(p['message'])}{obj}")
    return [*lines, ""]


def _refused(report: ReconcileReport) -> list[str]:
    if not report.refused:
        return []
    return ["#### Refused outputs (not written)", "", *(f"- {_esc(line)}" for line in report.refused), ""]


def _failed(report: ReconcileReport) -> list[str]:
    failed = [o for o in report.outcomes if o.state == "failed"]
    if not failed:
        return []
    lines = [f"#### Failed pipelines ({len(failed)})", ""]
    for outcome in failed:
        lines += _failure(outcome)
    return lines


def _failure(outcome: Outcome) -> list[str]:
    what = f"<b>{_h(outcome.task.wtype)}.{_h(outcome.task.action)}</b> <code>{_h(str(outcome.task.ref))}</code>"
    lines = []
    for f in failures(outcome):
        where = f"pipeline <code>{_h(f['pipeline'])}</code>"
        if f["container"]:
            where += f", container <code>{_h(f['container'])}</code>"
        lines += [f"<details><summary>{what}: {where}: {_h(redact(str(f['reason'])))}</summary>", ""]
        tail = [line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "…" for line in f["logTail"]]
        if tail:
            lines += [f"Last {_n(len(tail), 'log line')}:", "", fenced(redact("\n".join(tail)), "text")]
        else:
            lines.append("No log output.")
        lines += ["", _CLOSE_DETAILS, ""]
    return lines


def _batch_diffs(batch: StoreBatch) -> list[str]:
    lines = []
    for dest, diffs in by_destination(batch).items():
        n = counts(diffs)
        summary = (f"<code>{_h(store_key(batch.store))}</code> → Destination <b>{_h(dest)}</b>: "
                   f"{n['add']} added, {n['modify']} changed, {n['remove']} removed")
        lines += [f"<details><summary>{summary}</summary>", ""]
        for d in diffs:
            lines += [fenced(redact(unified_masked(d)).rstrip("\n"), "diff"), ""]
        lines += [_CLOSE_DETAILS, ""]
    return lines


def _batch_written(batch: StoreBatch) -> list[str]:
    assert batch.result is not None and batch.result.revision is not None
    lines = []
    commit = batch.result.revision
    for dest, paths in written_by_destination(batch).items():
        summary = (f"<code>{_h(store_key(batch.store))}</code> @ <code>{_h(commit[:12])}</code> → Destination "
                   f"<b>{_h(dest)}</b>: {len(paths['add'])} added, {len(paths['modify'])} changed, "
                   f"{len(paths['remove'])} removed")
        lines += [f"<details><summary>{summary}</summary>", ""]
        for action, label in zip(ACTIONS, ("added", "changed", "removed"), strict=True):
            lines += [f"- {label} {code_span(path)}" for path in paths[action]]
        lines += ["", _CLOSE_DETAILS, ""]
    return lines


def _runs(report: ReconcileReport) -> list[str]:
    runs = runs_json(report)
    if not runs:
        return []
    lines = [f"<details><summary>Workflow runs ({len(runs)})</summary>", ""]
    for r in runs:
        at = f" at {code_span(r['failedPipeline'])}" if r["failedPipeline"] else ""
        lines.append(f"- {code_span(r['workflow'])} {code_span(r['object'])}: {r['result']}{at} ({_esc(r['reason'])})")
    return [*lines, "", _CLOSE_DETAILS, ""]


def _finish(lines: list[str], secrets: Iterable[str]) -> str:
    return redact("\n".join(lines).rstrip("\n") + "\n", list(secrets))


# -- markdown helpers ------------------------------------------------------------------------

def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _h(text: str) -> str:
    """Text inside HTML (a <summary>): shown, not interpreted; one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def _esc(text: str) -> str:
    """Plain text in markdown: HTML is shown, not interpreted; one line."""
    return html.escape(" ".join(str(text).split()), quote=False)


def escape(text: str) -> str:
    """`text` as plain markdown text on one line (HTML shown, not interpreted)."""
    return _esc(text)


# -- splitting -------------------------------------------------------------------------------

@dataclass(slots=True)
class _Leaf:
    lines: list[str]
    fence: bool = False

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.lines)


@dataclass(slots=True)
class _Details:
    opening: str
    children: list[_Leaf | _Details] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.opening) + 1 + sum(c.size for c in self.children) + _CLOSER_SIZE


_Node = _Leaf | _Details
_CLOSER = ["", _CLOSE_DETAILS]
_CLOSER_SIZE = sum(len(line) + 1 for line in _CLOSER)
_MIN_CONTENT = 300  # a <details> is not opened at the end of a part with less room than this


def split(body: str, limit: int) -> list[str]:
    """`body` as comments of at most `limit` characters each (module docstring): `[body]` when
    it fits; else parts cut between blocks, never inside a code fence (a single block too large
    for a comment is cut short, with a note), `<details>` closed at a cut and reopened after it,
    each part marked `<!-- promisebot:plan part i/n -->`, the first part beginning as `body`
    does (its summary)."""
    if len(body) <= limit:
        return [body]
    if limit < MIN_LIMIT:
        raise ValueError(f"a comment limit of {limit} characters is too small to split a comment into")
    header = len(part_marker(99_999, 99_999)) + 1 + len(_continued(99_999, 99_999)) + 2
    packer = _Packer(limit - header)
    for node in _parse(body.split("\n")):
        packer.place(node)
    parts = packer.finish()
    total = len(parts)
    out = []
    for index, lines in enumerate(parts, 1):
        head = [part_marker(index, total)] + ([] if index == 1 else [_continued(index, total), ""])
        out.append("\n".join(head + lines).rstrip("\n") + "\n")
    return out


def _continued(index: int, total: int) -> str:
    return f"_Continued from the previous comment (part {index} of {total})._"


def _fence_opening(line: str) -> str | None:
    match = _FENCE_OPEN.match(line)
    if match is None or (match.group(1)[0] == "`" and "`" in match.group(2)):
        return None
    return match.group(1)


def _closes(line: str, fence: str) -> bool:
    match = _FENCE_CLOSE.match(line)
    return match is not None and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)


def _parse(lines: list[str]) -> list[_Node]:
    """Blocks of a markdown body: code fences (whole), `<details>` (opening line, children,
    closing line) and paragraphs (runs of non-blank lines; a blank line is a leaf of its own)."""
    root: list[_Node] = []
    stack: list[_Details] = []

    def add(node: _Node) -> None:
        (stack[-1].children if stack else root).append(node)

    i, paragraph = 0, None
    while i < len(lines):
        line = lines[i]
        fence = _fence_opening(line)
        if fence is not None:
            j = i + 1
            while j < len(lines) and not _closes(lines[j], fence):
                j += 1
            add(_Leaf(lines[i:j + 1], fence=True))
            i, paragraph = j + 1, None
            continue
        stripped = line.strip()
        if stripped.startswith("<details"):
            details = _Details(line)
            add(details)
            stack.append(details)
            paragraph = None
        elif stripped == _CLOSE_DETAILS and stack:
            stack.pop()
            paragraph = None
        elif not stripped:
            add(_Leaf([line]))
            paragraph = None
        elif paragraph is not None:
            paragraph.lines.append(line)
        else:
            paragraph = _Leaf([line])
            add(paragraph)
        i += 1
    return root


class _Packer:
    """Fills parts of at most `budget` characters with blocks, in order."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.parts: list[list[str]] = []
        self.lines: list[str] = []
        self.size = 0
        self.open: list[str] = []  # opening lines of the <details> open at this point
        self.fresh = True  # the part holds nothing but reopened <details>

    def room(self) -> int:
        return self.budget - self.size - len(self.open) * _CLOSER_SIZE

    def fresh_room(self) -> int:
        return self.budget - sum(len(_reopened(o)) + 2 for o in self.open) - len(self.open) * _CLOSER_SIZE

    def emit(self, lines: list[str]) -> None:
        self.lines += lines
        self.size += sum(len(line) + 1 for line in lines)
        if any(line.strip() for line in lines):
            self.fresh = False

    def flush(self) -> None:
        while self.lines and not self.lines[-1].strip():
            self.size -= len(self.lines.pop()) + 1
        self.parts.append(self.lines + _CLOSER * len(self.open))
        self.lines, self.size = [], 0
        for opening in self.open:
            self.emit([_reopened(opening), ""])
        self.fresh = True

    def finish(self) -> list[list[str]]:
        if not self.fresh or not self.parts:
            self.parts.append(self.lines)
        return self.parts

    def place(self, node: _Node) -> None:
        blank = isinstance(node, _Leaf) and not any(line.strip() for line in node.lines)
        if blank and (self.fresh or node.size > self.room()):
            return  # no blank line at the top of a part, nor one that would start a new part
        if node.size <= self.room():
            self.emit(_lines(node))
            return
        if not self.fresh and node.size <= self.fresh_room():
            self.flush()
            self.emit(_lines(node))
            return
        if isinstance(node, _Details):
            if not self.fresh and self.room() < len(node.opening) + 1 + _CLOSER_SIZE + _MIN_CONTENT:
                self.flush()
            self.emit([node.opening])
            self.open.append(node.opening)
            for child in node.children:
                self.place(child)
            self.open.pop()
            self.emit(_closer(self.lines))
            return
        if node.fence:
            if not self.fresh:
                self.flush()
            self.emit(_cutfenced(node.lines, self.room()))
        elif len(node.lines) > 1:
            for line in node.lines:
                self.place(_Leaf([line]))
        else:
            if not self.fresh:
                self.flush()
            room = self.room() - 2
            self.emit([node.lines[0][:room] + "…"])


def _lines(node: _Node) -> list[str]:
    if isinstance(node, _Leaf):
        return node.lines
    out = [node.opening]
    for child in node.children:
        out += _lines(child)
    return out + _closer(out)


def _closer(before: list[str]) -> list[str]:
    """The lines closing a <details>: after a blank line (one, not two)."""
    return [_CLOSE_DETAILS] if before and not before[-1].strip() else _CLOSER


def _reopened(opening: str) -> str:
    if "</summary>" in opening:
        return opening.replace("</summary>", " (continued)</summary>", 1)
    return opening


def _cutfenced(lines: list[str], room: int) -> list[str]:
    """A code fence too long for a comment: its first lines that fit in `room`, then a note."""
    fence = _fence_opening(lines[0]) or "```"
    closed = len(lines) > 1 and _closes(lines[-1], fence)
    body = lines[1:-1] if closed else lines[1:]
    closing = lines[-1] if closed else fence
    left = room - (len(lines[0]) + 1) - (len(closing) + 1) - (len(_cut_note(len(body))) + 2)
    kept: list[str] = []
    for line in body:
        if len(line) + 1 > left:
            if not kept and left > 2:  # a first line longer than a comment: its beginning
                kept.append(line[:left - 2] + "…")
            break
        kept.append(line)
        left -= len(line) + 1
    whole = len(kept) - (1 if kept and kept[-1] is not body[len(kept) - 1] else 0)
    return [lines[0], *kept, closing, "", _cut_note(len(body) - whole)]


def _cut_note(lines: int) -> str:
    return (f"_… {lines} more line{'s' * (lines != 1)} of this file {'are' if lines != 1 else 'is'} not shown: "
            "the comment would be too long._")
