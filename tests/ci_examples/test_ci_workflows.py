"""The GitHub Action (action.yml) and the example CI configurations (config/examples/ci/): they
pass actionlint (with shellcheck on every `run:` script) and the vendored JSON schemas of
check-jsonschema, offline, and they keep the security policy the docs promise: no
`pull_request_target`, no checkout of a pull request's code, least-privilege permissions on
every job, reconciles serialized, inputs never pasted into shell code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from paths import ROOT

ACTION = ROOT / "action.yml"
EXAMPLES = ROOT / "config" / "examples" / "ci"
WORKFLOW = EXAMPLES / "promisebot.yml"
GITLAB_CI = EXAMPLES / "gitlab" / ".gitlab-ci.yml"
ACTION_REF = "your-org/promisebot@v0.1.0"  # how the example workflow names the action
LOCAL_ACTION = "./.github/actions/promisebot"  # where the tests put action.yml for actionlint
BIN = Path(sys.executable).parent
GITHUB_SCOPES = {"actions", "attestations", "checks", "contents", "deployments", "discussions", "id-token",
                 "issues", "packages", "pages", "pull-requests", "repository-projects", "security-events",
                 "statuses", "models"}


def tool(name: str) -> str:
    """A linter of the test extra (requirements-test.lock), from this virtualenv."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: install requirements-test.lock (scripts/setup.sh)")
    return str(found)


def run(args: list[str], cwd: Path | None = None, offline: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    """Run a linter with this virtualenv's tools first on PATH; `offline`: in a network namespace
    of its own (no network at all) where the machine allows it (root, as CI), so a schema or
    a check that needed the network would fail here rather than pass by fetching."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if offline and _can_unshare():
        args = ["unshare", "--net", "--", *args]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, **kw)


_UNSHARE: list[bool] = []


def _can_unshare() -> bool:
    if not _UNSHARE:
        ok = shutil.which("unshare") is not None and subprocess.run(
            ["unshare", "--net", "--", "true"], capture_output=True).returncode == 0
        _UNSHARE.append(ok)
    return _UNSHARE[0]


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    """The workflow's `on:` (YAML 1.1 reads the bare key `on` as true)."""
    on = workflow.get("on", workflow.get(True))
    assert isinstance(on, dict), "the example names its events with their settings"
    return on


def lint_tree(tmp_path: Path, workflow_text: str) -> Path:
    """A repository laid out for actionlint: the example workflow using action.yml as a local
    action, so actionlint checks every `with:` input and `steps.*.outputs` against it."""
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / LOCAL_ACTION).mkdir(parents=True)
    shutil.copy(ACTION, repo / LOCAL_ACTION / "action.yml")
    assert ACTION_REF in workflow_text
    (repo / ".github" / "workflows" / "promisebot.yml").write_text(workflow_text.replace(ACTION_REF, LOCAL_ACTION))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


# --- actionlint ---------------------------------------------------------------------------------

def test_actionlint_passes_the_example_workflow_and_its_use_of_the_action(tmp_path):
    repo = lint_tree(tmp_path, WORKFLOW.read_text())
    out = run([tool("actionlint"), "-verbose", "-shellcheck", tool("shellcheck")], cwd=repo)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Linting .github/workflows/promisebot.yml" in out.stderr
    assert 'Rule "shellcheck" was disabled' not in out.stderr  # the run: scripts were shellchecked


@pytest.mark.parametrize(("change", "expected"), [
    (("          mode: plan\n", "          mode: plan\n          platform_path: x\n"),
     'input "platform_path" is not defined in action'),
    (("steps.promisebot.outputs.has-changes", "steps.promisebot.outputs.changes"),
     'property "changes" is not defined'),
    (('echo "plan has changes', 'echo "${{ github.event.pull_request.title }} plan has changes'),
     "potentially untrusted"),
], ids=["unknown-input", "unknown-output", "script-injection"])
def test_actionlint_catches_a_wrong_use_of_the_action(tmp_path, change, expected):
    old, new = change
    text = WORKFLOW.read_text()
    assert old in text
    repo = lint_tree(tmp_path, text.replace(old, new, 1))
    out = run([tool("actionlint"), "-shellcheck", tool("shellcheck")], cwd=repo)
    assert out.returncode == 1
    assert expected in out.stdout


def test_the_action_scripts_pass_shellcheck():
    for step in load(ACTION)["runs"]["steps"]:
        if "run" in step:
            out = run([tool("shellcheck"), "--shell=bash", "-"], input=step["run"])
            assert out.returncode == 0, f"{step['name']}:\n{out.stdout}"


# --- JSON schemas (vendored in check-jsonschema) -----------------------------------------------

SCHEMA_CHECKS = [
    (ACTION, ["--builtin-schema", "vendor.github-actions"]),
    (WORKFLOW, ["--builtin-schema", "vendor.github-workflows"]),
    (WORKFLOW, ["--builtin-schema", "custom.github-workflows-require-timeout"]),
    (GITLAB_CI, ["--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci"]),
]


@pytest.mark.parametrize(("path", "schema"), SCHEMA_CHECKS, ids=lambda v: v[1] if isinstance(v, list) else v.name)
def test_the_files_match_their_schema(path, schema):
    out = run([tool("check-jsonschema"), *schema, str(path)])
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("path", "schema", "old", "new", "expected"), [
    (ACTION, "vendor.github-actions", "using: composite", "using: compose", "runs.using"),
    (WORKFLOW, "vendor.github-workflows", "cancel-in-progress: false", "cancel-in-progress: never",
     "cancel-in-progress"),
    (GITLAB_CI, "vendor.gitlab-ci", "resource_group: promisebot-reconcile", "resource_groups: promisebot",
     "resource_groups"),
], ids=["action", "workflow", "gitlab"])
def test_the_schema_checks_catch_mistakes(tmp_path, path, schema, old, new, expected):
    text = path.read_text()
    assert old in text
    broken = tmp_path / path.name
    broken.write_text(text.replace(old, new, 1))
    extra = ["--data-transform", "gitlab-ci"] if schema == "vendor.gitlab-ci" else []
    out = run([tool("check-jsonschema"), "--builtin-schema", schema, *extra, str(broken)])
    assert out.returncode == 1
    assert expected in out.stdout


def test_the_vendored_schemas_refer_to_nothing_remote():
    """check-jsonschema's builtin schemas are files of the package; none of the three used here
    `$ref`s a URL, so the checks above never fetch anything."""
    import check_jsonschema

    vendor = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor"
    for name in ("github-actions", "github-workflows", "gitlab-ci"):
        text = (vendor / f"{name}.json").read_text()
        json.loads(text)
        refs = re.findall(r'"\$ref"\s*:\s*"([^"]*)"', text)
        assert refs, name
        assert all(r.startswith("#") for r in refs), (name, [r for r in refs if not r.startswith("#")])


# --- the action ---------------------------------------------------------------------------------

def test_the_action_has_the_documented_inputs_and_outputs():
    action = load(ACTION)
    inputs = action["inputs"]
    assert {k: v.get("default") for k, v in inputs.items()} == {
        "mode": "auto", "token": "${{ github.token }}", "platform-path": ".", "args": ""}
    assert all(v["description"] for v in inputs.values())
    # Each output is the step output `promisebot ci` appends to $GITHUB_OUTPUT (bot/ci/summary.py).
    assert {k: v["value"] for k, v in action["outputs"].items()} == {
        name: f"${{{{ steps.promisebot.outputs.{name} }}}}" for name in ("has-changes", "comment-url", "status")}
    assert all(v["description"] for v in action["outputs"].values())
    from bot.ci.outcome import Outcome
    from bot.ci.summary import render_outputs

    written = render_outputs(Outcome(title="t", result="r", has_changes=True, comment_url="u", state="success"))
    assert {line.split("=", 1)[0] for line in written.splitlines()} == set(action["outputs"])
    steps = action["runs"]["steps"]
    assert action["runs"]["using"] == "composite"
    assert steps[0]["uses"] == "actions/setup-python@v5" and steps[0]["with"]["python-version"] == "3.11"
    install = steps[1]
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert '--no-deps "$ACTION_PATH"' in install["run"]
    assert '--require-hashes' in install["run"] and "requirements.lock" in install["run"]
    assert (ROOT / "requirements.lock").is_file()
    ci = steps[2]
    assert ci["id"] == "promisebot" and ' ci --mode "$ACTION_MODE"' in ci["run"]
    assert ci["env"]["PROMISEBOT_GITHUB_TOKEN"] == "${{ inputs.token }}"


def test_the_action_never_pastes_an_expression_into_a_script():
    """Inputs and step outputs reach the scripts as environment variables: an input such as
    `args: $(curl ...)` stays data."""
    for step in load(ACTION)["runs"]["steps"]:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]


def _ci_step(tmp_path: Path, mode: str, args: str, exit_code: int = 0) -> tuple[subprocess.CompletedProcess, Path]:
    """The action's `promisebot ci` step, run by bash with a stand-in promisebot that prints the
    arguments it got, one per line."""
    fake = tmp_path / "promisebot"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\nexit "${FAKE_EXIT:-0}"\n')
    fake.chmod(0o755)
    step = load(ACTION)["runs"]["steps"][2]
    env = {"PATH": os.environ["PATH"], "PROMISEBOT": str(fake), "ACTION_MODE": mode,
           "ACTION_PLATFORM_PATH": "platform dir", "ACTION_ARGS": args, "FAKE_EXIT": str(exit_code)}
    out = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=30)
    return out, tmp_path


def test_the_action_passes_its_inputs_as_plain_words(tmp_path):
    (tmp_path / "a-file").write_text("")
    out, cwd = _ci_step(tmp_path, "plan", " --detailed-exitcode\n$(touch pwned) * 'q'  ")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ci", "--mode", "plan", "--platform-path", "platform dir",
                                       "--detailed-exitcode", "$(touch", "pwned)", "*", "'q'"]
    assert not (cwd / "pwned").exists()

    out, _ = _ci_step(tmp_path, "auto", "")
    assert out.stdout.splitlines() == ["ci", "--mode", "auto", "--platform-path", "platform dir"]


def test_the_step_exits_with_promisebots_exit_code(tmp_path):
    """`--detailed-exitcode`'s 2 (the plan has changes) and a failure's 1 reach the workflow."""
    for code in (0, 1, 2):
        out, _ = _ci_step(tmp_path, "plan", "--detailed-exitcode", exit_code=code)
        assert out.returncode == code


def test_the_action_runs_promisebot_ci(tmp_path):
    """The step with the real `promisebot ci` of this checkout, on an event it ignores (a push to
    another branch: no forge, no Docker): its options exist, and its outputs reach $GITHUB_OUTPUT."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "ref": "refs/heads/feature", "before": "0" * 40, "after": "1" * 40, "commits": [],
        "pusher": {"name": "alice"}, "sender": {"login": "alice"},
        "repository": {"full_name": "acme/platform", "name": "platform", "owner": {"login": "acme"},
                       "clone_url": "https://github.com/acme/platform.git", "default_branch": "main"}}))
    output, summary = tmp_path / "output", tmp_path / "summary"
    step = load(ACTION)["runs"]["steps"][2]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PROMISEBOT": tool("promisebot"),
           "ACTION_MODE": "auto", "ACTION_PLATFORM_PATH": ".", "ACTION_ARGS": "--detailed-exitcode",
           "PROMISEBOT_GITHUB_TOKEN": "t0ken", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
           "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/platform", "GITHUB_RUN_ID": "42",
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(tmp_path)}
    out = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not the default branch main" in out.stdout
    assert output.read_text() == "has-changes=false\ncomment-url=\nstatus=\n"
    assert "### promisebot: nothing to do" in summary.read_text()


def test_the_action_refuses_an_unknown_mode(tmp_path):
    out, _ = _ci_step(tmp_path, "apply", "")
    assert out.returncode == 1
    assert "::error::promisebot: input mode must be auto, plan or reconcile, not 'apply'" in out.stdout


# --- the GitHub Actions example: policy ---------------------------------------------------------

def test_no_pull_request_target_anywhere():
    assert "pull_request_target" not in triggers(load(WORKFLOW))
    for path in (ACTION, WORKFLOW, GITLAB_CI):
        # Only named in the comments that say why it is not used.
        code = [line for line in path.read_text().splitlines()
                if "pull_request_target" in line and not line.lstrip().startswith("#")]
        assert code == [], path


def test_the_workflow_handles_pull_requests_pushes_and_comments():
    on = triggers(load(WORKFLOW))
    assert set(on) == {"pull_request", "push", "issue_comment"}
    assert on["push"]["branches"] == ["main"]
    assert on["issue_comment"]["types"] == ["created"]
    assert {"opened", "synchronize", "closed"} <= set(on["pull_request"]["types"])


def test_every_job_has_least_privilege_permissions():
    workflow = load(WORKFLOW)
    assert workflow["permissions"] == {}, "nothing by default; each job asks for what it uses"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict) and permissions, f"job {name} has no permissions of its own"
        assert set(permissions) <= GITHUB_SCOPES, name
        assert set(permissions.values()) <= {"read", "write"}, name
        assert "id-token" not in permissions and "actions" not in permissions, name
    jobs = workflow["jobs"]
    assert jobs["plan"]["permissions"]["contents"] == "read", "a plan writes nothing to the repository"
    assert jobs["reconcile"]["permissions"]["contents"] == "write", "a reconcile pushes promisebot/state"
    for name in ("plan", "reconcile", "chatops"):
        assert jobs[name]["permissions"]["statuses"] == "write", name
        assert jobs[name]["permissions"]["pull-requests"] == "write", name
        assert jobs[name]["permissions"]["issues"] == "write", name


def test_no_job_checks_out_code():
    for name, job in load(WORKFLOW)["jobs"].items():
        for step in job["steps"]:
            assert "actions/checkout" not in step.get("uses", ""), name


def test_every_job_runs_the_action_with_a_timeout():
    for name, job in load(WORKFLOW)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert job["runs-on"] == "ubuntu-latest", f"{name}: pipelines need Docker"
        assert any(step.get("uses") == ACTION_REF for step in job["steps"]), name


def test_reconciles_never_overlap_and_plans_are_superseded():
    jobs = load(WORKFLOW)["jobs"]
    reconcile = jobs["reconcile"]
    assert "github.event_name == 'push'" in reconcile["if"]
    assert reconcile["concurrency"] == {"group": "promisebot-${{ github.repository }}-reconcile",
                                        "cancel-in-progress": False}
    assert reconcile["steps"][0]["with"]["mode"] == "reconcile"
    plan = jobs["plan"]
    assert plan["concurrency"]["group"] == "promisebot-${{ github.repository }}-plan-${{ github.event.pull_request.number }}"
    assert plan["concurrency"]["cancel-in-progress"] is True
    assert plan["steps"][0]["with"]["mode"] == "plan"
    chatops = jobs["chatops"]
    assert chatops["concurrency"]["cancel-in-progress"] is False


def test_chatops_runs_for_pull_request_comments_only():
    chatops = load(WORKFLOW)["jobs"]["chatops"]
    assert "github.event_name == 'issue_comment'" in chatops["if"]
    assert "github.event.issue.pull_request" in chatops["if"]
    for name in ("plan", "reconcile"):
        assert "issue_comment" not in load(WORKFLOW)["jobs"][name]["if"]


# --- the GitLab CI example: policy --------------------------------------------------------------

def test_gitlab_plans_merge_requests_and_reconciles_the_default_branch():
    ci = load(GITLAB_CI)
    plan, reconcile = ci["promisebot-plan"], ci["promisebot-reconcile"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert plan["script"] == ["promisebot ci --mode plan"]
    assert plan["interruptible"] is True
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in reconcile["rules"][0]["if"]
    assert reconcile["script"] == ["promisebot ci --mode reconcile"]
    assert reconcile["resource_group"] == "promisebot-reconcile"
    assert reconcile["interruptible"] is False
    assert {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'} in ci["workflow"]["rules"]


def test_gitlab_jobs_have_docker_and_no_token_in_the_file():
    ci = load(GITLAB_CI)
    base = ci[".promisebot"]
    assert [s["name"] for s in base["services"]] == ["docker:27-dind"]
    assert base["services"][0]["alias"] == "docker"
    variables = ci["variables"]
    assert variables["DOCKER_HOST"] == "tcp://docker:2376" and variables["DOCKER_TLS_VERIFY"] == "1"
    assert variables["DOCKER_CERT_PATH"].startswith(variables["DOCKER_TLS_CERTDIR"])
    assert variables["GIT_STRATEGY"] == "none", "promisebot fetches what it needs itself"
    # The token comes from a masked CI/CD variable, never from the file.
    assert "PROMISEBOT_GITLAB_TOKEN" not in variables
    assert "PROMISEBOT_GITLAB_TOKEN" in GITLAB_CI.read_text()
    for name in ("promisebot-plan", "promisebot-reconcile"):
        assert ci[name]["extends"] == ".promisebot"
