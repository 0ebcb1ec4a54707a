"""The PR/MR comment and commit status (bot/forges/comment.py), rendered from real
`ReconcileReport`s: the engine through the fake runner and real Git repositories (no Docker)."""

from __future__ import annotations

import re
import stat

import pytest
from fake_runner import FakeRunner, spec
from reconcile_fixtures import Env, destination, one_request_platform, promise, request

from bot.forges.base import Comment
from bot.forges.comment import (
    DESCRIPTION_LIMIT,
    GITHUB_COMMENT_LIMIT,
    MARKER,
    PlanFacts,
    facts_line,
    find_own,
    find_parts,
    part_index,
    read_facts,
    render_applied,
    render_error,
    render_plan,
    render_unused_part,
    split,
    status_for,
)
from bot.report.diffs import SECRET_VALUES_CHANGED, UNPARSEABLE_SECRET, by_destination, mask_secret_values

HEAD = "0123456789abcdef0123456789abcdef01234567"
MERGE = "fedcba9876543210fedcba9876543210fedcba98"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
SECRET_SECRET = b"""apiVersion: v1
kind: Secret
metadata:
  name: db
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"password":"aHVudGVyMg=="}}'
type: Opaque
data:
  password: aHVudGVyMg==
stringData:
  user: admin-of-everything
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue-and-green
"""


@pytest.fixture
def env(tmp_path):
    return one_request_platform(tmp_path, runner=FakeRunner())


def plan(env: Env, **kwargs) -> str:
    report = env.reconcile(dry_run=True)
    return render_plan(report, head_sha=HEAD, base_ref="main", **kwargs)


def balanced(part: str) -> None:
    """Every code fence closed, every <details> closed, none closed before it was opened."""
    fence, depth = None, 0
    for line in part.splitlines():
        ticks = re.match(r"^ {0,3}(`{3,})", line)
        if fence is None:
            if ticks:
                fence = ticks.group(1)
            elif line.startswith("<details"):
                depth += 1
            elif line.strip() == "</details>":
                depth -= 1
                assert depth >= 0, part
        elif ticks and line.strip() == ticks.group(1) and len(ticks.group(1)) >= len(fence):
            fence = None
    assert fence is None, "a code fence is left open"
    assert depth == 0, "a <details> is left open"


def table_row(store: str, dest: str, n: dict[str, int]) -> str:
    return f"| `{store}` | `{dest}` | {n['add']} | {n['modify']} | {n['remove']} |"


# -- summary ---------------------------------------------------------------------------------

def test_summary_counts_per_store_and_destination(env):
    env.write("destinations/prod.yaml", destination("prod"))
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit()
    report = env.reconcile(dry_run=True)
    body = render_plan(report, head_sha=HEAD, base_ref="main", title="Two Redis", reused=3, base_sha="f" * 40)
    first, facts, heading = body.split("\n")[:3]
    assert (first, heading) == (MARKER, "### promisebot plan: Two Redis")
    assert read_facts(facts) == PlanFacts(HEAD, "f" * 40, ("dev", "prod"))
    assert "`0123456789ab` merged onto `main` at `ffffffffffff`." in body
    (batch,) = report.batches
    groups = by_destination(batch)
    assert set(groups) == {"dev", "prod"}
    for dest, diffs in groups.items():
        n = {a: sum(1 for d in diffs if d.action == a) for a in ("add", "modify", "remove")}
        assert table_row("GitStateStore/state", dest, n) in body
    assert "**Pipelines:** 2 ran, 0 failed, 3 cached (reused from the saved plan)." in body
    # the summary comes before every diff
    assert body.index("| `GitStateStore/state` |") < body.index("```diff")
    state, description = status_for(report)
    assert state == "success"
    total = sum(len(b.diff) for b in report.batches)
    assert description == f"{total} added, 0 changed, 0 removed in 2 Destinations; 2 pipelines ran"
    balanced(body)


def test_summary_counts_added_changed_removed(env):
    env.runner.outputs["redis"] = lambda job: {"thing.yaml": f"size: {spec(job).get('size', 1)}\n".encode()}
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit()
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", spec={"size": 2}))
    env.remove("requests/r2.yaml")
    env.write("requests/r3.yaml", request("Redis", "r3"))
    env.commit()
    report = env.reconcile(dry_run=True)
    body = render_plan(report, head_sha=HEAD, base_ref="main")
    assert table_row("GitStateStore/state", "dev", {"add": 1, "modify": 1, "remove": 1}) in body
    assert "-size: 1\n+size: 2\n" in body
    assert status_for(report) == ("success", "1 added, 1 changed, 1 removed in 1 Destination; 2 pipelines ran")


def test_no_changes(env):
    env.reconcile()
    report = env.reconcile(dry_run=True)
    body = render_plan(report, head_sha=HEAD, base_ref="main")
    assert "No state store would change." in body and "```diff" not in body
    assert status_for(report) == ("success", "no state store changes; 0 pipelines ran")


# -- what needs attention --------------------------------------------------------------------

def test_invalid_requests_are_listed_with_file_and_line(env):
    env.write("requests/bad.yaml", request("Redis", "Not_A_Name"))
    env.commit()
    report = env.reconcile(dry_run=True)
    (problem,) = [p for p in report.invalid if p["file"] == "requests/bad.yaml"]
    body = render_plan(report, head_sha=HEAD, base_ref="main")
    line = f"- `requests/bad.yaml:{problem['line']}` `metadata.name`: invalid name 'Not_A_Name'"
    assert line in body
    assert body.index("#### Validation errors") < body.index("#### Changes")
    state, description = status_for(report)
    assert state == "failure" and description.startswith("1 validation error;")


def test_failed_pipeline_shows_its_log_tail_in_details(env):
    env.write("promises/broken.yaml", promise("broken"))
    env.write("requests/b1.yaml", request("Broken", "b1"))
    env.commit()
    env.runner.failing.add("broken")
    env.runner.logs["broken"] = "".join(f"log-{i:02}\n" for i in range(1, 16)) + f"pushing with {TOKEN}\n"
    report = env.reconcile(dry_run=True)
    body = render_plan(report, head_sha=HEAD, base_ref="main")
    section = body[body.index("#### Failed pipelines (1)"):body.index("#### Changes")]
    assert ("<details><summary><b>resource.configure</b> <code>Broken.test.promisebot.io/default/b1</code>: "
            "pipeline <code>instance</code>, container <code>main</code>: ") in section
    assert "exited with code 1" in section
    assert "Last 10 log lines:" in section and "log-07" in section and "log-15" in section
    assert "log-06" not in section
    assert TOKEN not in body and "pushing with ***" in section
    balanced(body)
    assert status_for(report) == ("failure", "1 pipeline failed; "
                                  "3 added, 0 changed, 0 removed in 1 Destination")


# -- secrets ---------------------------------------------------------------------------------

def test_secret_values_in_diffs_are_masked(env):
    env.runner.outputs["redis"] = lambda job: {
        "secret.yaml": SECRET_SECRET,
        "list.yaml": b"kind: List\nitems:\n- kind: Secret\n  data:\n    key: c2VjcmV0LWluLWEtbGlzdA==\n",
        "broken.yaml": b"kind: Secret\ndata: {password: [unclosed-secret-value\n",
        "notes.txt": b"A Secret is not kept here: plain text [\n",
        "cm.yaml": b"kind: ConfigMap\ndata:\n  password: hunter2hunter2\n  other: my-very-own-value\n",
    }
    env.commit()
    body = plan(env, secrets=["my-very-own-value"])
    for value in ("aHVudGVyMg==", "admin-of-everything", "c2VjcmV0LWluLWEtbGlzdA==", "unclosed-secret-value",
                  "hunter2hunter2", "my-very-own-value"):
        assert value not in body, value
    assert "+  password: '***'\n" in body and "+  user: '***'\n" in body
    assert "kubectl.kubernetes.io/last-applied-configuration: '***'" in body
    assert "+  colour: blue-and-green\n" in body, "other documents of the file are shown"
    assert "+" + UNPARSEABLE_SECRET.decode() in body
    assert "+A Secret is not kept here: plain text [\n" in body, "a file that is not YAML stays as is"
    assert "+  password: ***\n" in body  # not a Secret: redacted by shape (bot.redact)
    balanced(body)


def test_a_change_of_secret_values_only_is_said_not_shown(env):
    value = {"v": b"Zmlyc3QtdmFsdWU="}
    env.runner.outputs["redis"] = lambda job: {"s.yaml": b"kind: Secret\ndata:\n  k: " + value["v"] + b"\n"}
    env.reconcile()
    value["v"] = b"c2Vjb25kLXZhbHVl"
    env.write("requests/r1.yaml", request("Redis", "r1", spec={"rotate": True}))
    env.commit()
    body = plan(env)
    assert table_row("GitStateStore/state", "dev", {"add": 0, "modify": 1, "remove": 0}) in body
    assert SECRET_VALUES_CHANGED in body
    assert "Zmlyc3QtdmFsdWU=" not in body and "c2Vjb25kLXZhbHVl" not in body


def test_mask_secret_values_leaves_other_files_alone():
    assert mask_secret_values(None) is None
    for data in (b"kind: ConfigMap\ndata: {a: b}\n", b"\xff\xfeSecret", b"no yaml: [\n", b"# Secret\nkind: Thing\n"):
        assert mask_secret_values(data) is data
    masked = mask_secret_values(b"kind: Secret\ndata: not-a-map\n")
    assert masked is not None and b"not-a-map" not in masked and b"data: '***'" in masked


def test_render_error_redacts_and_fences(env):
    body = render_error(f"git fetch https://x:{TOKEN}@github.com/o/r failed\n```\nmore", secrets=["hunter2hunter2"])
    assert body.startswith(MARKER + "\n### promisebot could not finish\n")
    assert TOKEN not in body and "https://x:***@github.com" in body
    assert "\n````text\n" in body, "the fence is longer than any backtick run in the message"
    balanced(body)


# -- after the merge -------------------------------------------------------------------------

def test_render_applied_names_commits_destinations_and_files(env):
    planned = plan(env)
    report = env.reconcile()
    commit = report.commits["GitStateStore/state"]
    body = render_applied(planned, report, merge_sha=MERGE)
    assert body.startswith(MARKER + "\n### promisebot applied `fedcba987654`\n")
    assert body.count(MARKER) == 1, "the plan below keeps no marker of its own"
    assert f"| `GitStateStore/state` | `{commit[:12]}` | `dev` | 3 | 0 | 0 |" in body
    assert f"<code>GitStateStore/state</code> @ <code>{commit[:12]}</code> → Destination <b>dev</b>" in body
    assert "- added `dev/resources/default/redis/r1/instance/5058f/thing.yaml`" in body
    reviewed = body.index("<details><summary>The plan that was reviewed</summary>")
    assert body.index("### promisebot plan", reviewed) > reviewed
    assert "+kind: Thing" in body[reviewed:]
    balanced(body)
    assert status_for(report)[0] == "success"
    assert find_own([Comment(1, "hello"), Comment(2, body, "bot")], author="bot").id == 2


def test_render_applied_shows_write_errors(env):
    hook = env.state / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen today' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    report = env.reconcile()
    body = render_applied(None, report, merge_sha=MERGE)
    assert "### promisebot could not write every state store for `fedcba987654`" in body
    assert "could not be written (retried by the next reconcile)" in body and "pushes are frozen today" in body
    assert "The plan that was reviewed" not in body
    state, description = status_for(report, secrets=[str(env.state)])
    assert state == "error" and description.startswith("1 state store failed: GitStateStore/state: push to *** ")
    assert len(description) <= DESCRIPTION_LIMIT


# -- finding the comment again ---------------------------------------------------------------

def test_find_own_and_parts():
    comments = [Comment(1, f"nice change, quoting {MARKER}", "alice"), Comment(2, f"{MARKER}\nfake", "alice"),
                Comment(3, f"<!-- promisebot:plan part 1/2 -->\n{MARKER}\nplan", "bot"),
                Comment(4, "<!-- promisebot:plan part 2/2 -->\nmore", "bot"),
                Comment(5, render_unused_part(3), "bot")]
    assert find_own(comments).id == 2
    assert find_own(comments, author="bot").id == 3
    assert {i: c.id for i, c in find_parts(comments, author="bot").items()} == {1: 3, 2: 4, 3: 5}
    assert part_index("just a comment") is None


# -- splitting -------------------------------------------------------------------------------

def two_hundred_files(job) -> dict[str, bytes]:
    return {f"files/f{i:03}.yaml": "".join(f"line-{i:03}-{j:02}: {'x' * 40}\n" for j in range(12)).encode()
            for i in range(200)}


def test_a_200_file_plan_is_split_at_file_boundaries(env):
    env.runner.outputs["redis"] = two_hundred_files
    env.commit()
    body = plan(env)
    assert len(body) > GITHUB_COMMENT_LIMIT
    parts = split(body, GITHUB_COMMENT_LIMIT)
    assert len(parts) >= 2
    for index, part in enumerate(parts, 1):
        assert len(part) <= GITHUB_COMMENT_LIMIT
        assert part.startswith(f"<!-- promisebot:plan part {index}/{len(parts)} -->\n")
        assert part_index(part) == index
        balanced(part)
    assert MARKER in parts[0] and all(MARKER not in p for p in parts[1:])
    # 200 files and the Destination's two canaries
    assert "| `GitStateStore/state` | `dev` | 202 | 0 | 0 |" in parts[0], "the summary is in the first part"
    assert "(continued)</summary>" in parts[1], "the Destination's <details> goes on in the next part"
    # every file's diff is whole, in exactly one part
    for i in range(200):
        path = f"+++ b/dev/resources/default/redis/r1/instance/5058f/files/f{i:03}.yaml\n"
        holding = [p for p in parts if path in p]
        assert len(holding) == 1
        assert f"+line-{i:03}-11: " in holding[0]
    assert "not shown" not in "".join(parts)
    comments = [Comment(i, p, "bot") for i, p in enumerate(parts, 10)]
    assert find_own(comments, "bot").id == 10
    assert sorted(find_parts(comments, "bot")) == list(range(1, len(parts) + 1))


def test_a_file_larger_than_the_limit_is_cut_with_a_note(env):
    env.runner.outputs["redis"] = lambda job: {"big.yaml": "".join(f"row-{j:05}\n" for j in range(5000)).encode()}
    env.commit()
    body = plan(env)
    parts = split(body, 20_000)
    assert all(len(p) <= 20_000 for p in parts)
    for part in parts:
        balanced(part)
    joined = "".join(parts)
    assert "row-00000" in joined and "row-04999" not in joined
    assert re.search(r"\n\+row-\d{5}\n```\n\n_… \d+ more lines of this file are not shown: "
                     r"the comment would be too long._", joined), "whole lines, then the note"
    assert "+kind: Namespace" in joined, "the files after it are still shown"


def test_a_line_larger_than_the_limit_is_cut():
    body = "\n".join([MARKER, "### promisebot plan", "", "```text", "x" * 30_000, "```", "", "after", ""])
    parts = split(body, 10_000)
    assert all(len(p) <= 10_000 for p in parts)
    for part in parts:
        balanced(part)
    assert len(parts) == 3 and "### promisebot plan" in parts[0]
    assert "x…\n```\n\n_… 1 more line of this file is not shown" in parts[1], "cut in a part of its own"
    assert "after" in parts[2]


def test_split_keeps_a_body_that_fits_and_refuses_a_tiny_limit(env):
    body = plan(env)
    assert split(body, GITHUB_COMMENT_LIMIT) == [body]
    with pytest.raises(ValueError):
        split(body, 100)


def test_split_cuts_long_lists_between_lines():
    items = [f"- `requests/r{i}.yaml:1` `spec`: bad value {i}" for i in range(3000)]
    body = "\n".join([MARKER, "### promisebot plan", "", *items, ""])
    parts = split(body, 10_000)
    assert all(len(p) <= 10_000 for p in parts)
    assert sum(p.count("\n- `requests/") for p in parts) == 3000


def test_facts_are_read_back_only_from_a_well_formed_line():
    facts = PlanFacts("a" * 40, "b" * 40, ("dev",))
    assert read_facts("x\n" + facts_line(facts) + "\ny") == facts
    assert read_facts("no facts here") is None
    assert read_facts('<!-- promisebot:facts {"head": 1} -->') is None
    assert read_facts("quoted: " + facts_line(facts)) is None, "only a line of its own counts"
