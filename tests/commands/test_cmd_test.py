"""`promisebot test` end to end through the real CLI and Docker, including interruption."""

import signal
import subprocess
import sys
import time
import uuid

import docker
import pytest
from runner_fixtures import ROOT

from runners.base import RUN_LABEL
from runners.docker import DockerRunner

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("images")]

PROMISE = """\
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: cache
spec:
  destinationSelectors:
    - matchLabels: {{zone: eu}}
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {{name: caches.example.io}}
    spec:
      group: example.io
      names: {{kind: Cache, plural: caches, singular: cache}}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    size: {{type: integer, default: 1}}
  workflows:
    resource:
      configure:
{configure}      delete:
{delete}"""

PIPELINE = """\
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {{name: {name}}}
          spec:
            containers:
              - name: {container}
                image: promisebot/busybox:latest
                imagePullPolicy: Never
                command: [sh, -c]
                args:
                  - |
                    {script}
"""

REQUEST = """\
apiVersion: example.io/v1
kind: Cache
metadata: {name: small, namespace: team-a}
spec: {size: 3}
"""

RENDER = ("echo rendering $KRATIX_OBJECT_NAME; mkdir /kratix/output/extra; "
          "grep 'size:' /kratix/input/object.yaml > /kratix/output/cache.yaml; echo e > /kratix/output/extra/e.txt; "
          "echo 'message: cache is up' > /kratix/metadata/status.yaml; "
          "printf -- '- directory: extra\\n  matchLabels: {kind: extra}\\n' > /kratix/metadata/destination-selectors.yaml")


def write(tmp_path, script):
    configure = PIPELINE.format(name="make", container="render", script=script)
    delete = PIPELINE.format(name="remove", container="fail", script="echo cannot delete; exit 4")
    (tmp_path / "promise.yaml").write_text(PROMISE.format(configure=configure, delete=delete))
    (tmp_path / "request.yaml").write_text(REQUEST)
    return ["--promise", str(tmp_path / "promise.yaml"), "--request", str(tmp_path / "request.yaml")]


def cli(*args):
    return [sys.executable, "-m", "bot.cli", "test", *args]


def test_runs_a_workflow_and_shows_everything(tmp_path):
    args = write(tmp_path, RENDER)
    out_dir = tmp_path / "out"
    done = subprocess.run(cli(*args, "--output", str(out_dir)), cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    for expected in ("pipeline 1: make (resource configure) succeeded", "container render [promisebot/busybox:latest] "
                     "exit code 0", "rendering small", "cache.yaml", "size: 3", "extra/e.txt",
                     "status.yaml (incoming)", "message: cache is up", "workflow-control", "(none)",
                     "extra (id ", "resource-workflow: {'kind': 'extra'}",
                     ". (id 5058f1af8388633f609cadb75a75dc9d): 1 files; selectors promise: {'zone': 'eu'}",
                     "merged status", "type: ConfigureWorkflowCompleted", "workflow succeeded: 1 Work(s)"):
        assert expected in text, expected
    assert (out_dir / "1-make/output/cache.yaml").read_text().strip() == "size: 3"
    assert (out_dir / "1-make/output/extra/e.txt").read_text() == "e\n"
    assert "kratix.io/promise-name: cache" in (out_dir / "1-make/input/object.yaml").read_text()
    assert (out_dir / "1-make/metadata/status.yaml").read_text() == "message: cache is up\n"

    failed = subprocess.run(cli(*args, "--action", "delete"), cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 1
    assert "exit code 4" in failed.stdout and "cannot delete" in failed.stdout and "workflow FAILED" in failed.stdout
    assert "error: pipeline remove, container fail: exited with code 4\n" in failed.stdout
    assert "exit code None" not in failed.stdout

    missing = subprocess.run(cli("--promise", str(tmp_path / "nope.yaml"), "--request", args[3]), cwd=ROOT,
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.yaml: no such file" in missing.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interruption_leaves_no_container_or_volume(tmp_path, signum):
    proc, run_id = _start_until_running(tmp_path, uuid.uuid4().hex)
    client = docker.from_env()
    try:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signum, err
    assert "interrupted; containers and volumes removed" in err
    assert _left(client, run_id) == ([], [])


def _left(client: docker.DockerClient, run_id: str) -> tuple[list, list]:
    """Containers and volumes of one run. Low-level listing: no per-item inspect that a
    concurrent removal (another session's runner sweeping) could make fail."""
    label = {"label": f"{RUN_LABEL}={run_id}"}
    return client.api.containers(all=True, filters=label), client.api.volumes(filters=label).get("Volumes") or []


def _start_until_running(tmp_path, marker: str) -> tuple[subprocess.Popen, str]:
    """`promisebot test` of a pipeline that sleeps; returns once its container runs."""
    args = write(tmp_path, f"echo {marker}; sleep 120")
    proc = subprocess.Popen(cli(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = docker.from_env()
    for _ in range(300):  # wait until the pipeline container runs (no timing assertion)
        for c in client.api.containers(filters={"label": RUN_LABEL}):
            if marker in c["Command"]:
                return proc, c["Labels"][RUN_LABEL]
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the pipeline container never started")


def test_a_killed_process_leftovers_are_swept_by_the_next_runner(tmp_path):
    # SIGKILL: no cleanup code can run, so the run's containers and volumes stay behind until
    # the next runner on this host starts and sees their owner process is gone (that may be a
    # concurrent test session's runner: any runner of this host sweeps).
    proc, run_id = _start_until_running(tmp_path, uuid.uuid4().hex)
    proc.kill()
    proc.communicate(timeout=60)
    assert DockerRunner().sweep_orphans() == 0  # the constructor already swept them
    assert _left(docker.from_env(), run_id) == ([], [])


ENV_PIPELINE = PIPELINE.replace("                command: [sh, -c]\n", """\
                env:
                  - {{name: GITHUB_TOKEN, value: "{token}"}}
                  - {{name: PLAIN, value: shown-value}}
                command: [sh, -c]
""")


def test_deep_status_and_secrets_are_reported_cleanly(tmp_path):
    # Issue 6: a 500-level status.yaml crashed `promisebot test` with a RecursionError traceback.
    # Issue 8: a token given as an env value was printed as is.
    token = "ghp_" + "k7" * 18
    script = ('echo "token $GITHUB_TOKEN plain $PLAIN"; i=0; s=""; while [ $i -lt 500 ]; do echo "${s}a:"; '
              's="$s "; i=$((i+1)); done > /kratix/metadata/status.yaml')
    configure = ENV_PIPELINE.format(name="deep", container="nest", script=script, token=token)
    delete = PIPELINE.format(name="remove", container="fail", script="exit 4")
    (tmp_path / "promise.yaml").write_text(PROMISE.format(configure=configure, delete=delete))
    (tmp_path / "request.yaml").write_text(REQUEST)
    done = subprocess.run(cli("--promise", str(tmp_path / "promise.yaml"), "--request", str(tmp_path / "request.yaml")),
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stdout + done.stderr
    assert ("error: pipeline deep: /kratix/metadata/status.yaml, line 101: nesting too deep: more than 100 levels "
            "of nested mappings and lists (promisebot's limit is 100 levels); refused") in done.stdout
    assert token not in done.stdout + done.stderr
    assert "token *** plain shown-value" in done.stdout
