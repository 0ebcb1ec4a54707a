"""The Docker runner against a real engine (contract §1.2-§1.6): images are local, never pulled."""

import pytest
import yaml
from runner_fixtures import PYTHON, leftovers, pipeline, promise, request, settings, sh

from bot.settings import parse_quantity
from runners.base import describe_failure, failure_line
from runners.pool import run_bounded
from runners.workflow import run_workflow

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("images")]

DUMP = ("env | grep -E '^(KRATIX_|USER_)' | sort > /kratix/metadata/env-$STEP; "
        "cp /kratix/input/object.yaml /kratix/metadata/object-$STEP.yaml; "
        "if touch /kratix/input/x 2>/dev/null; then echo writable > /kratix/metadata/ro-$STEP; "
        "else echo read-only > /kratix/metadata/ro-$STEP; fi; pwd > /kratix/metadata/pwd-$STEP")


def env_of(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().splitlines())


def test_resource_workflow_contract_three_containers_and_two_pipelines(runner):
    """One workflow checks: the eleven variables (resource), user env after them, command/args/
    workingDir, object.yaml content, read-only input, data passed through /kratix/metadata by
    three containers, status of pipeline 1 visible to pipeline 2, groups and selectors."""
    first = pipeline(
        "first",
        sh("one", f"STEP=1; {DUMP}; echo from-one > /kratix/metadata/scratch",
           env=[{"name": "USER_A", "value": "a"}, {"name": "KRATIX_PROMISE_NAME", "value": "overridden"}],
           working_dir="/tmp"),
        sh("two", "cat /kratix/metadata/scratch > /kratix/metadata/scratch2; echo from-two >> /kratix/metadata/scratch2"),
        sh("three", "mkdir -p /kratix/output/db && cp /kratix/metadata/scratch2 /kratix/output/db/passed.txt && "
                    "printf 'a: 1\\n---\\nb: 2\\n' > /kratix/output/multi.yaml && "
                    "printf 'message: one\\nstage: one\\n' > /kratix/metadata/status.yaml && "
                    "printf -- '- directory: db\\n  matchLabels: {tier: data}\\n- matchLabels: {env: dev}\\n' "
                    "> /kratix/metadata/destination-selectors.yaml"),
    )
    second = pipeline("second", sh("check", "STEP=2; " + DUMP + "; grep -q 'stage: one' /kratix/input/object.yaml "
                                   "&& printf 'stage: two\\n' > /kratix/metadata/status.yaml"))
    p = promise(workflows={("resource", "configure"): [first, second]}, selectors={"zone": "eu"})
    req = request()
    obj = {**req.body, "status": {"message": "old", "previous": True}}
    result = run_workflow(runner, p, obj, "resource", "configure", settings(), request=req)

    assert result.succeeded, result.error
    one, two = result.pipelines
    assert [c.exit_code for c in one.containers] == [0, 0, 0]
    env = env_of(one.metadata_files["env-1"])
    assert env == {
        "KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_PROMISE_NAME": "overridden",
        "KRATIX_PIPELINE_NAME": "first", "KRATIX_OBJECT_KIND": "Web", "KRATIX_OBJECT_GROUP": "example.io",
        "KRATIX_OBJECT_VERSION": "v1", "KRATIX_OBJECT_NAME": "shop", "KRATIX_OBJECT_NAMESPACE": "team-a",
        "KRATIX_CRD_PLURAL": "webs", "KRATIX_CLUSTER_SCOPED": "false", "USER_A": "a"}  # user env wins: after
    assert env_of(two.metadata_files["env-2"])["KRATIX_PIPELINE_NAME"] == "second"
    assert env_of(two.metadata_files["env-2"])["KRATIX_PROMISE_NAME"] == "web"
    assert one.metadata_files["pwd-1"] == b"/tmp\n"
    assert one.metadata_files["ro-1"] == b"read-only\n" and two.metadata_files["ro-2"] == b"read-only\n"

    text = one.metadata_files["object-1.yaml"]
    assert text == one.object_yaml
    assert text == yaml.safe_dump(yaml.safe_load(text), sort_keys=True).encode()  # keys sorted
    seen = yaml.safe_load(text)
    assert seen["metadata"]["labels"] == {"kratix.io/promise-name": "web"}
    assert seen["spec"] == {"size": 2} and seen["status"]["previous"] is True
    assert seen["status"]["message"] == "Pending"
    seen2 = yaml.safe_load(two.object_yaml)
    assert seen2["status"]["stage"] == "one" and seen2["status"]["message"] == "Pending"  # reset as in Kratix

    assert one.output_files == {"db/passed.txt": b"from-one\nfrom-two\n", "multi.yaml": b"a: 1\n---\nb: 2\n"}
    db, default = one.groups
    assert [w.filepath for w in db.workloads] == ["db/passed.txt"]
    assert [(s.match_labels, s.source) for s in db.selectors] == [({"tier": "data"}, "resource-workflow")]
    assert [(s.match_labels, s.source) for s in default.selectors] == [
        ({"env": "dev"}, "resource-workflow"), ({"zone": "eu"}, "promise")]
    assert two.groups == []  # no output: no groups, still a Work (replaces earlier output)
    assert [(w.key, len(w.groups)) for w in result.works] == [("web/team-a/shop/first", 2), ("web/team-a/shop/second", 0)]
    assert result.status["stage"] == "two" and result.status["message"] == "Resource requested"
    assert result.status["workflowsSucceeded"] == 2
    assert {c["type"]: c["status"] for c in result.status["conditions"]}["ConfigureWorkflowCompleted"] == "True"


def test_promise_workflow_variables_and_delete_ignores_output(runner):
    configure = pipeline("setup", sh("c", "STEP=p; " + DUMP + "; echo dep > /kratix/output/dep.yaml; "
                                     "printf 'message: configured\\nother: x\\n' > /kratix/metadata/status.yaml"))
    delete_first = pipeline("cleanup", sh("d", "echo x > /kratix/output/ignored.yaml; ln -s /etc/passwd /kratix/output/l; "
                                          "echo 'message: bye' > /kratix/metadata/status.yaml"))
    delete_second = pipeline("never", sh("n", "exit 1"))
    p = promise(workflows={("promise", "configure"): [configure], ("promise", "delete"): [delete_first, delete_second]})
    obj = {**p.body, "status": {}}
    tasks = [lambda: run_workflow(runner, p, obj, "promise", "configure", settings()),
             lambda: run_workflow(runner, p, obj, "promise", "delete", settings())]
    conf, delete = run_bounded(runner, tasks, parallelism=2)

    assert conf.succeeded, conf.error
    env = env_of(conf.pipelines[0].metadata_files["env-p"])
    assert env == {
        "KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_WORKFLOW_TYPE": "promise", "KRATIX_PROMISE_NAME": "web",
        "KRATIX_PIPELINE_NAME": "setup", "KRATIX_OBJECT_KIND": "Promise", "KRATIX_OBJECT_GROUP": "platform.kratix.io",
        "KRATIX_OBJECT_VERSION": "v1alpha1", "KRATIX_OBJECT_NAME": "web", "KRATIX_OBJECT_NAMESPACE": "",
        "KRATIX_CRD_PLURAL": "promises", "KRATIX_CLUSTER_SCOPED": "true"}
    assert yaml.safe_load(conf.pipelines[0].object_yaml)["kind"] == "Promise"
    assert conf.status["message"] == "configured" and "other" not in conf.status
    assert conf.works[0].is_dependency and conf.works[0].groups[0].workloads[0].content == b"dep\n"

    assert delete.succeeded, delete.error
    assert [p.pipeline for p in delete.pipelines] == ["cleanup"]  # only the first delete pipeline
    assert delete.pipelines[0].output_files == {} and delete.pipelines[0].groups == [] and delete.works == []
    assert delete.status["message"] == "bye"  # status.yaml honoured on delete


@pytest.mark.parametrize("script, overrides, message", [
    ("ln -s /etc/passwd /kratix/output/link", {}, "/kratix/output/link: is a symbolic link (to /etc/passwd)"),
    ("echo a > /kratix/output/a; ln /kratix/output/a /kratix/output/b", {}, "/kratix/output/b: is a hard link"),
    ("mkfifo /kratix/output/pipe", {}, "/kratix/output/pipe: is a FIFO"),
    ("head -c 2048 /dev/zero > /kratix/output/big", {"max_output_bytes": 1024},
     "/kratix/output/big: 2048 bytes, which takes /kratix/output to "),
    ("for i in 1 2 3 4; do echo $i > /kratix/output/f$i; done", {"max_output_files": 3}, "more than 3 files"),
])
def test_rejected_outputs_produce_nothing(runner, script, overrides, message):
    p = promise(workflows={("resource", "configure"): [pipeline("p", sh("c", "echo ok > /kratix/output/good; " + script))]})
    req = request()
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)
    assert not result.succeeded and result.works == []
    assert message in result.error
    assert result.pipelines[0].output_files == {} and result.pipelines[0].groups == []


def test_metadata_errors_fail_the_pipeline_and_suspend_stops_the_workflow(runner):
    bad = {
        "kratix": "echo 'kratix: {}' > /kratix/metadata/status.yaml",
        "subdir": "mkdir -p /kratix/output/a/b; printf -- '- directory: a/b\\n  matchLabels: {x: y}\\n' "
                  "> /kratix/metadata/destination-selectors.yaml",
        "missing": "printf -- '- directory: nope\\n  matchLabels: {x: y}\\n' > /kratix/metadata/destination-selectors.yaml",
    }
    pipelines = [pipeline(name, sh("c", script)) for name, script in bad.items()]
    req = request()
    for pl, expected in zip(pipelines, ["'kratix' is a kratix managed status field",
                                        "sub-directories are not allowed", "does not exist"], strict=True):
        p = promise(workflows={("resource", "configure"): [pl]})
        result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
        assert not result.succeeded and expected in result.error, result.error

    suspend = pipeline("wait", sh("c", "echo out > /kratix/output/x; "
                                  "printf 'retryAfter: 5m\\nmessage: later\\n' > /kratix/metadata/workflow-control.yaml"))
    after = pipeline("after", sh("c", "exit 3"))
    p = promise(workflows={("resource", "configure"): [suspend, after]})
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
    assert result.suspended and result.retry_after_seconds == 300 and result.resume_index == 0
    assert result.works == [] and [r.pipeline for r in result.pipelines] == ["wait"]
    entry = result.status["kratix"]["workflows"]["pipelines"][0]
    assert (entry["phase"], entry["message"], entry["attempts"]) == ("Suspended", "later", 1)
    assert result.status["kratix"]["workflows"]["suspendedGeneration"] == 3


def test_failures_timeout_oom_and_pull_policy(runner):
    req = request()

    def run(container, **overrides):
        p = promise(workflows={("resource", "configure"): [pipeline("p", container, sh("later", "exit 0"))]})
        return run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)

    failed = run(sh("c", "echo to-stderr >&2; exit 7"))
    assert not failed.succeeded and failed.failed_pipeline == "p"
    [c] = failed.pipelines[0].containers  # the second container never ran
    assert c.exit_code == 7 and c.logs == "to-stderr\n" and "exited with code 7" in failed.error
    assert {x["type"]: x["reason"] for x in failed.status["conditions"]}["ConfigureWorkflowCompleted"] == \
        "ConfigureWorkflowFailed"

    slow = run(sh("c", "echo started; sleep 60"), timeout_seconds=1.5)
    [c] = slow.pipelines[0].containers
    assert c.timed_out and "timed out" in slow.error and c.logs == "started\n"

    oom = run(sh("c", "head -c 200m /dev/zero | tail > /dev/null"), memory_bytes=parse_quantity("16Mi"))
    [c] = oom.pipelines[0].containers
    assert c.oom_killed and "out of memory" in oom.error

    never = run(sh("c", "true", image="promisebot/not-built:v9"))
    assert "not present on the Docker engine and its imagePullPolicy is Never" in never.error
    always = run(sh("c", "true", image_pull_policy="Always"))
    assert "cannot pull image 'promisebot/busybox:latest' (imagePullPolicy Always)" in always.error
    assert not [r for r in (never, always) if r.pipelines[0].containers]  # nothing started

    limited = run(sh("c", "yes | head -c 300000; exit 1"), max_log_bytes=1000)
    logs = limited.pipelines[0].containers[0].logs
    assert logs.startswith("[... ") and logs.endswith("y\n" * 500) and len(logs) < 1100

    runner.close()
    assert leftovers(runner.session) == []  # gone after failure, timeout and OOM


def test_kratix_sdk_pipeline(runner):
    script = """
from kratix_sdk import KratixSDK, Status, DestinationSelector
sdk = KratixSDK()
res = sdk.read_resource_input()
assert sdk.is_resource_workflow() and sdk.is_configure_action() and sdk.promise_name() == "web"
size = res.get_value("spec.size")
sdk.write_output("deployment.yaml", f"replicas: {size}\\n".encode())
sdk.write_output("db/claim.yaml", b"kind: Claim\\n")
status = Status()
status.set("message", f"{res.get_name()} ready")
status.set("endpoint.url", "https://shop")
sdk.write_status(status)
sdk.write_destination_selectors([DestinationSelector(match_labels={"env": "dev"}),
                                 DestinationSelector(directory="db", match_labels={"tier": "data"})])
print("sdk done")
"""
    container = sh("sdk", "", image=PYTHON)
    container.command, container.args = ["python3", "-c", script], None
    p = promise(workflows={("resource", "configure"): [pipeline("sdk", container)]})
    req = request()
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
    assert result.succeeded, (result.error, result.pipelines[0].containers)
    out = result.pipelines[0]
    assert out.containers[0].logs == "sdk done\n"
    assert out.output_files == {"deployment.yaml": b"replicas: 2\n", "db/claim.yaml": b"kind: Claim\n"}
    assert [(g.directory, [s.match_labels for s in g.selectors]) for g in out.groups] == [
        ("db", [{"tier": "data"}]), (".", [{"env": "dev"}])]
    assert result.status["message"] == "shop ready" and result.status["endpoint"] == {"url": "https://shop"}


def test_suspending_pipeline_is_not_failed_by_a_missing_selector_directory(runner):
    # Kratix's work-writer returns before reading any listed directory when workflow-control
    # suspends (IfSuspendOrRetry), so the pipeline is suspended, not failed.
    script = ("printf -- '- directory: later\\n  matchLabels: {x: y}\\n' > /kratix/metadata/destination-selectors.yaml; "
              "echo 'suspend: true' > /kratix/metadata/workflow-control.yaml")
    p = promise(workflows={("resource", "configure"): [pipeline("wait", sh("c", script))]})
    req = request()
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
    assert result.succeeded and result.suspended, result.error
    assert result.works == [] and result.pipelines[0].groups == []


def test_output_edge_cases(runner):
    """Unusual names, an empty output, a step that writes nothing, exactly maxOutputFiles files."""
    req = request()

    def run(script, **overrides):
        p = promise(workflows={("resource", "configure"): [pipeline("p", sh("c", script))]})
        return run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)

    names = run("cd /kratix/output && mkdir -p 'team a' 'ünï/sub' && echo 1 > 'my file.yaml' && "
                "echo 2 > 'team a/名前 x.yaml' && echo 3 > 'ünï/sub/ç.txt' && "
                "printf -- '- directory: team a\\n  matchLabels: {t: a}\\n' > /kratix/metadata/destination-selectors.yaml")
    assert names.succeeded, names.error
    out = names.pipelines[0]
    assert out.output_files == {"my file.yaml": b"1\n", "team a/名前 x.yaml": b"2\n", "ünï/sub/ç.txt": b"3\n"}
    assert [(g.directory, [w.filepath for w in g.workloads]) for g in out.groups] == [
        ("team a", ["team a/名前 x.yaml"]), (".", ["my file.yaml", "ünï/sub/ç.txt"])]

    for script in ("true", "mkdir -p /kratix/output/empty/dir"):  # nothing written / only empty dirs
        nothing = run(script)
        assert nothing.succeeded, nothing.error
        assert nothing.pipelines[0].output_files == {} and nothing.pipelines[0].groups == []
        assert [len(w.groups) for w in nothing.works] == [0]  # a Work with no groups: placements go

    many = "cd /kratix/output && seq 1 10000 | xargs touch"
    exact = run(many, max_output_files=10000)
    assert exact.succeeded, exact.error
    assert len(exact.pipelines[0].output_files) == 10000
    assert len(exact.pipelines[0].groups[0].workloads) == 10000
    over = run(many, max_output_files=9999)
    assert not over.succeeded and "more than 9999 files in /kratix/output" in over.error


def test_nonexistent_command_and_huge_log(runner):
    req = request()

    def run(container, **overrides):
        p = promise(workflows={("resource", "configure"): [pipeline("p", container)]})
        return run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)

    missing = sh("c", "")
    missing.command, missing.args = ["/no/such/binary"], None
    failed = run(missing)
    assert not failed.succeeded and failed.failed_pipeline == "p"
    assert failed.error.startswith("pipeline p, container c: cannot start: "), failed.error
    assert "/no/such/binary" in failed.error and "no such file" in failed.error.lower(), failed.error
    assert [(c.name, c.exit_code) for c in failed.pipelines[0].containers] == [("c", None)]

    loud = run(sh("c", "head -c 20000000 /dev/zero | tr '\\0' x; echo; echo END"), max_log_bytes=4096)
    assert loud.succeeded, loud.error
    logs = loud.pipelines[0].containers[0].logs
    assert logs.startswith("[... ") and logs.endswith("x\nEND\n") and len(logs) < 4096 + 100

    runner.close()
    assert leftovers(runner.session) == []


def test_secrets_a_container_prints_are_redacted_at_the_source(runner):
    # Issue 8: a token given as a container `env` value showed up in the recorded log tail.
    token = "ghp_" + "Zx9" * 12
    env = [{"name": "GITHUB_TOKEN", "value": token}, {"name": "DB_PASSWORD", "value": "correct-horse-battery"},
           {"name": "PLAIN", "value": "visible-value"}]
    script = ('echo "token=$GITHUB_TOKEN"; echo "db $DB_PASSWORD"; echo "plain $PLAIN"; '
              'echo "clone https://bot:pa55word@git.example.com/x"; echo AKIAIOSFODNN7EXAMPLE; '
              'echo "Authorization: Bearer abcdefghijkl"; echo "$GITHUB_TOKEN" > /kratix/metadata/scratch; exit 3')
    second = sh("second", "cat /kratix/metadata/scratch; exit 1")  # a later container printing it
    req = request()
    for pl in (pipeline("p", sh("c", script, env=env)),
               pipeline("p", sh("c", script.replace("exit 3", "exit 0"), env=env), second)):
        p = promise(workflows={("resource", "configure"): [pl]})
        result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
        assert not result.succeeded
        logs = "".join(c.logs for c in result.pipelines[0].containers)
        for secret in (token, "correct-horse-battery", "pa55word", "AKIAIOSFODNN7EXAMPLE", "abcdefghijkl"):
            assert secret not in logs
            assert secret not in describe_failure(result.pipelines[0])
        assert "plain visible-value" in logs or pl.containers[-1].name == "second"
        assert "***" in logs


def test_a_secret_split_by_the_log_cut_is_not_kept_in_part(runner):
    token = "ghp_" + "Q" * 36
    script = f"printf 'x%.0s' $(seq 1 980); echo; echo {token}; echo end"  # the 30-byte cut falls inside the token
    p = promise(workflows={("resource", "configure"): [pipeline("p", sh("c", script))]})
    req = request()
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(max_log_bytes=30), request=req)
    logs = result.pipelines[0].containers[0].logs
    assert "QQQQ" not in logs and logs.endswith("***\nend\n"), logs


def test_every_failure_says_why_in_one_line(runner):
    # Issue 9: failures must carry their reason (never "exit None"), and the failure helper
    # formats "pipeline P, container C: <reason>" with the last log lines.
    req = request()

    def run(container, **overrides):
        p = promise(workflows={("resource", "configure"): [pipeline("p", container)]})
        result = run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)
        [pr] = result.pipelines
        assert not result.succeeded and not pr.succeeded
        assert result.error == failure_line(pr) and "\n" not in pr.error and "None" not in pr.error
        for c in pr.containers:
            assert c.succeeded or (c.reason and "None" not in c.reason and "\n" not in c.reason)
        return pr

    exited = run(sh("c", "for i in 1 2 3 4 5; do echo line $i; done; exit 7"))
    assert exited.failed_container == "c" and exited.containers[0].error == "exited with code 7"
    assert describe_failure(exited, log_lines=2) == (
        "pipeline p, container c: exited with code 7\n  last 2 log lines:\n    | line 4\n    | line 5")
    assert describe_failure(exited, log_lines=0) == "pipeline p, container c: exited with code 7"

    missing = run(sh("c", "true", image="promisebot/not-built:v9"))
    assert failure_line(missing) == ("pipeline p, container c: image 'promisebot/not-built:v9' is not present on "
                                     "the Docker engine and its imagePullPolicy is Never (build or load it there first)")
    pull = run(sh("c", "true", image="promisebot/not-built:v9", image_pull_policy="IfNotPresent"))
    assert failure_line(pull).startswith("pipeline p, container c: cannot pull image 'promisebot/not-built:v9' "
                                         "(imagePullPolicy IfNotPresent): ")
    assert len(failure_line(pull)) > len("pipeline p, container c: cannot pull image "
                                         "'promisebot/not-built:v9' (imagePullPolicy IfNotPresent): ")  # engine's words

    slow = run(sh("c", "sleep 60"), timeout_seconds=1.5)
    assert failure_line(slow) == ("pipeline p, container c: timed out: the pipeline exceeded its 1.5s wall-clock "
                                  "limit (runner.timeoutSeconds, or the Promise's promisebot.io/pipeline-timeout "
                                  "annotation); the container was killed")

    oom = run(sh("c", "head -c 200m /dev/zero | tail > /dev/null"), memory_bytes=parse_quantity("16Mi"))
    assert failure_line(oom).startswith("pipeline p, container c: killed: out of memory (exceeded the 16Mi "
                                        "memory limit, runner.memory; exit code ")

    refused = run(sh("c", "ln -s /etc/passwd /kratix/output/link"))
    assert refused.failed_container is None
    assert failure_line(refused) == ("pipeline p: /kratix/output/link: is a symbolic link (to /etc/passwd); only "
                                     "regular files are allowed")

    bad_status = run(sh("c", "printf 'a: [\\n' > /kratix/metadata/status.yaml"))
    assert failure_line(bad_status).startswith("pipeline p: /kratix/metadata/status.yaml: malformed YAML: ")


def test_deeply_nested_status_written_by_a_pipeline_fails_it_clearly(runner):
    # Issue 6: 500 levels crashed `promisebot test` with a RecursionError and were recorded as
    # "RecursionError: maximum recursion depth exceeded".
    script = ("i=0; s=''; while [ $i -lt 500 ]; do echo \"${s}a:\"; s=\"$s \"; i=$((i+1)); done "
              "> /kratix/metadata/status.yaml")
    p = promise(workflows={("resource", "configure"): [pipeline("deep", sh("c", script))]})
    req = request()
    result = run_workflow(runner, p, req.body, "resource", "configure", settings(), request=req)
    assert not result.succeeded and result.failed_pipeline == "deep"
    assert result.error == ("pipeline deep: /kratix/metadata/status.yaml, line 101: nesting too deep: more than 100 "
                            "levels of nested mappings and lists (promisebot's limit is 100 levels); refused")


def test_output_messages_name_the_real_problem(runner):
    # Issue 10: the real size and the cap's setting; a backslash is not an "escape".
    req = request()

    def run(script, **overrides):
        p = promise(workflows={("resource", "configure"): [pipeline("p", sh("c", script))]})
        return run_workflow(runner, p, req.body, "resource", "configure", settings(**overrides), request=req)

    big = run("head -c 3000092 /dev/zero > /kratix/output/big.bin", max_output_bytes=1048576)
    assert big.error == ("pipeline p: /kratix/output/big.bin: 3000092 bytes, which takes /kratix/output to "
                         "3000092 bytes, over the 1048576-byte cap (the runner.maxOutputBytes setting)")
    slash = run("echo a > '/kratix/output/back\\slash.yaml'")
    assert "/kratix/output/back\\slash.yaml: the file name contains a backslash" in slash.error
    assert "escapes" not in slash.error
