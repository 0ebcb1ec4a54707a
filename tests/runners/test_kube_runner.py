"""The per-run Kubernetes API of pipeline containers (runners/kubeapi.py, the sidecar in
runners/docker.py, the status order in runners/workflow.py): rbac model, what the API may serve,
and, with real Docker, kratix-sdk's publish_status, kubectl, isolation between runs and
`network: none`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from runner_fixtures import PYTHON, pipeline, promise, request, settings, sh

from bot.model.objects import Permission, PipelineRBAC
from bot.platform.loader import load_platform_dir
from bot.secrets import SecretResolver
from bot.settings import load_settings
from runners import kubeapi
from runners.workflow import run_workflow

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = "promisebot/kubectl:latest"
PUBLISH = "promisebot-examples/publish-status:v1"

PROMISE_YAML = """\
apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: example-deployment
spec:
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: examples.marketplace.kratix.io
    spec:
      group: marketplace.kratix.io
      names: {kind: Example, plural: examples, singular: example}
      scope: Namespaced
      versions:
        - name: v1alpha1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    key: {type: string}
  workflows:
    resource:
      configure:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: resource-configure}
          spec:
            rbac:
              permissions:
                - apiGroups: [""]
                  verbs: ["get", "list"]
                  resources: ["configmaps"]
                  resourceNames: ["team-settings"]
                - apiGroups: ["platform.kratix.io"]
                  verbs: ["get"]
                  resources: ["promises"]
                  resourceNamespace: "*"
            containers:
              - name: resource-configure
                image: promisebot-examples/publish-status:v1
                imagePullPolicy: Never
                command: ["python3", "/pipeline/configure.py", "resource-configure"]
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: inspect}
          spec:
            rbac:
              serviceAccount: inspector
              permissions:
                - apiGroups: [""]
                  verbs: ["get", "list"]
                  resources: ["configmaps"]
                - apiGroups: [""]
                  verbs: ["get"]
                  resources: ["secrets"]
                  resourceNames: ["db"]
                - apiGroups: ["platform.kratix.io"]
                  verbs: ["get"]
                  resources: ["promises"]
                  resourceNamespace: "*"
            containers:
              - name: kubectl
                image: promisebot/kubectl:latest
                imagePullPolicy: Never
                command: ["sh", "-c"]
                args:
                  - |
                    set -u
                    out=/kratix/output
                    kubectl get examples.marketplace.kratix.io "$KRATIX_OBJECT_NAME" -n "$KRATIX_OBJECT_NAMESPACE" -o json > $out/object.json
                    kubectl get promise example-deployment -o json > $out/promise.json
                    kubectl get configmap team-settings -n team-a -o json > $out/configmap.json
                    kubectl get configmap other-team -n team-b > $out/other.txt 2>&1 || echo "exit $?" >> $out/other.txt
                    kubectl get secret db -n team-a -o json > $out/secret.json
                    kubectl get secret admin -n team-a > $out/secret.txt 2>&1 || echo "exit $?" >> $out/secret.txt
                    cat /var/run/secrets/kubernetes.io/serviceaccount/namespace > $out/namespace.txt
---
apiVersion: v1
kind: ConfigMap
metadata: {name: team-settings, namespace: team-a}
data: {size: large}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other-team, namespace: team-b}
data: {size: small}
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: team-a}
stringData: {password: never-served-from-the-repo}
"""

REQUEST_YAML = """\
apiVersion: marketplace.kratix.io/v1alpha1
kind: Example
metadata: {name: shop, namespace: team-a}
spec: {key: shop-web}
"""


# -- no Docker ---------------------------------------------------------------------------------


def test_rbac_is_read_from_the_pipeline_and_other_kubernetes_objects_are_kept(tmp_path):
    (tmp_path / "promise.yaml").write_text(PROMISE_YAML)
    platform = load_platform_dir(str(tmp_path))
    assert not platform.errors
    first, second = platform.promises["example-deployment"].pipelines("resource", "configure")
    assert first.rbac is not None and first.rbac.service_account == ""
    assert first.rbac.permissions[0] == Permission(("",), ("get", "list"), ("configmaps",), ("team-settings",), "")
    assert first.rbac.permissions[1].resource_namespace == "*"
    assert first.service_account("example-deployment", "resource", "configure") == \
        "example-deployment-resource-configure-resource-configure"  # Kratix's PipelineFactory.ID
    assert second.service_account("example-deployment", "resource", "configure") == "inspector"
    assert [(m["kind"], m["metadata"]["name"]) for m in platform.manifests] == [
        ("ConfigMap", "team-settings"), ("ConfigMap", "other-team"), ("Secret", "db")]
    assert len(platform.ignored) == 3


def test_the_setting():
    runner = load_settings().runner
    assert (runner.kube_api, runner.kube_api_image) == ("auto", "promisebot/python:latest")
    on = load_settings({"runner": {"kubernetesApi": {"enabled": True, "image": "x:1"}}}).runner
    assert (on.kube_api, on.kube_api_image) == ("true", "x:1")
    with pytest.raises(ValueError, match="runner.kubernetesApi.enabled: must be true, false or auto"):
        load_settings({"runner": {"kubernetesApi": {"enabled": "sometimes"}}})
    assert kubeapi.wanted("auto") and kubeapi.wanted("true") and not kubeapi.wanted("false")
    assert kubeapi.required("auto", True) and not kubeapi.required("auto", False)
    assert kubeapi.required("true", False) and not kubeapi.required("false", True)


def test_what_the_api_may_serve(tmp_path, monkeypatch):
    (tmp_path / "team-a" / "db").mkdir(parents=True)
    (tmp_path / "team-a" / "db" / "password").write_text("s3cr3t-value\n")
    (tmp_path / "team-a" / "other").mkdir()
    (tmp_path / "team-a" / "other" / "key").write_text("not granted")
    monkeypatch.setenv("PROMISEBOT_SECRET_TEAM_A_DB_USER", "admin")
    resolver = SecretResolver(tmp_path, os.environ)
    manifests = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-settings", "namespace": "team-a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "team-a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-settings", "namespace": "team-b"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "team-a"},
         "stringData": {"password": "from-the-repo"}},
    ]
    env = [("KRATIX_WORKFLOW_TYPE", "resource"), ("KRATIX_PROMISE_NAME", "web"), ("KRATIX_OBJECT_KIND", "Web"),
           ("KRATIX_OBJECT_GROUP", "example.io"), ("KRATIX_OBJECT_VERSION", "v1"),
           ("KRATIX_OBJECT_NAMESPACE", "team-a"), ("KRATIX_CRD_PLURAL", "webs"), ("KRATIX_CLUSTER_SCOPED", "false")]
    rbac = PipelineRBAC(permissions=[
        Permission(("",), ("get",), ("configmaps",), ("team-settings",)),
        Permission(("",), ("get",), ("secrets",), ("db",)),
    ])
    context = kubeapi.KubeContext(promise={"kind": "Promise"}, manifests=manifests, secrets=resolver)
    run = kubeapi.build_run({"kind": "Web"}, env, "p", [p.as_dict() for p in rbac.permissions], "sa", context)
    assert run["objectResource"] == {"group": "example.io", "version": "v1", "plural": "webs", "kind": "Web",
                                     "namespaced": True}
    assert run["rules"][0] == {"apiGroups": ["example.io"], "resources": ["webs", "webs/status"],
                               "verbs": ["get", "list", "update", "create", "patch"], "resourceNames": [],
                               "namespace": "team-a"}
    assert run["serviceAccount"] == {"name": "sa", "namespace": "team-a"}
    served = [(r["kind"], r["object"]["metadata"]["namespace"], r["object"]["metadata"]["name"])
              for r in run["resources"]]
    assert served == [("ConfigMap", "team-a", "team-settings"), ("Secret", "team-a", "db")]
    secret = run["resources"][1]["object"]
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == \
        {"password": "s3cr3t-value", "USER": "admin"}  # resolved, never the repo's stringData
    # A promise workflow runs in kratix-platform-system and may patch promises.
    run = kubeapi.build_run({"kind": "Promise"}, [("KRATIX_WORKFLOW_TYPE", "promise")], "p", [], "sa", None)
    assert run["serviceAccount"]["namespace"] == "kratix-platform-system" and run["promise"] is None
    assert run["objectResource"]["plural"] == "promises" and run["rules"][0]["namespace"] == "*"


# -- real Docker -------------------------------------------------------------------------------


def _py(name: str, script: str) -> object:
    c = sh(name, textwrap.dedent(script), image=PYTHON)
    c.command = ["python3", "-c"]
    return c


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_promisebot_test_publish_status_then_write_status_and_kubectl(tmp_path):
    """kratix-python's examples/deployment flow through `promisebot test`: publish_status, then
    write_status; the next pipeline (kubectl) sees the published status and reads what its
    rbac grants; a Secret is refused with 403."""
    (tmp_path / "promise.yaml").write_text(PROMISE_YAML)
    (tmp_path / "request.yaml").write_text(REQUEST_YAML)
    for name in ("db", "admin"):
        (tmp_path / "secrets" / "team-a" / name).mkdir(parents=True)
        (tmp_path / "secrets" / "team-a" / name / "password").write_text(f"{name}-resolved-password\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "test", "--promise", str(tmp_path / "promise.yaml"),
                           "--request", str(tmp_path / "request.yaml"), "--output", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
                          env={**os.environ, "PROMISEBOT_SECRETS_DIR": str(tmp_path / "secrets")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    second = out / "2-inspect" / "output"
    seen = json.loads((second / "object.json").read_text())
    # The first pipeline's published status, then its status.yaml, are in what the second reads.
    assert seen["status"]["phase"] == "updates-from-mid-stage"
    assert seen["metadata"]["name"] == "shop" and seen["spec"] == {"key": "shop-web"}
    assert json.loads((second / "promise.json").read_text())["metadata"]["name"] == "example-deployment"
    assert json.loads((second / "configmap.json").read_text())["data"] == {"size": "large"}
    assert "Forbidden" in (second / "other.txt").read_text() or "NotFound" in (second / "other.txt").read_text()
    # A granted Secret comes from the secret resolver, never from the platform repo.
    data = json.loads((second / "secret.json").read_text())["data"]
    assert base64.b64decode(data["password"]) == b"db-resolved-password"
    secret = (second / "secret.txt").read_text()  # not in resourceNames
    assert "Forbidden" in secret and 'cannot get resource "secrets"' in secret and "exit 1" in secret, secret
    assert (second / "namespace.txt").read_text() == "team-a"
    first_object = yaml.safe_load((out / "2-inspect" / "input" / "object.yaml").read_text())
    assert first_object["status"]["phase"] == "updates-from-mid-stage"
    assert first_object["status"]["message"] == "Pending"  # the controller's, as each pipeline starts
    # The merged status: published first, status.yaml over it, both kept.
    assert "phase: updates-from-mid-stage" in proc.stdout
    assert "created deployment shop-web" in proc.stdout


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_kratix_sdk_publish_status_works_unchanged_without_rbac(tmp_path):
    """kratix-python's README flow as a Promise writes it, with no spec.rbac (every Kratix
    pipeline pod has a service account): `promisebot test` with the default settings."""
    promise_yaml = next(yaml.safe_load_all(PROMISE_YAML))
    configure = promise_yaml["spec"]["workflows"]["resource"]["configure"]
    del configure[0]["spec"]["rbac"]
    promise_yaml["spec"]["workflows"]["resource"]["configure"] = configure[:1]
    (tmp_path / "promise.yaml").write_text(yaml.safe_dump(promise_yaml))
    (tmp_path / "request.yaml").write_text(REQUEST_YAML)
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "test", "--promise", str(tmp_path / "promise.yaml"),
                           "--request", str(tmp_path / "request.yaml"), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "phase: updates-from-mid-stage" in proc.stdout  # published, then status.yaml over it
    assert "created deployment shop-web" in proc.stdout


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_status_order_published_then_status_yaml(runner):
    """The API's PATCH first, status.yaml at the end of the pipeline (Kratix's order): a key in
    both ends with status.yaml's value; a key only published stays; later containers read the
    published status from the API."""
    publish = _py("publish", """
        import kratix_sdk as ks
        sdk = ks.KratixSDK()
        r = sdk.read_resource_input()
        s = ks.Status(); s.set("phase", "published"); s.set("both", "published"); sdk.publish_status(r, s)
        s = ks.Status(); s.set("both", "status.yaml"); s.set("message", "from status.yaml"); sdk.write_status(s)
    """)
    read = _py("read", """
        from kubernetes import client, config
        config.load_incluster_config()
        obj = client.CustomObjectsApi().get_namespaced_custom_object("example.io", "v1", "team-a", "webs", "shop")
        open("/kratix/metadata/seen", "w").write(obj["status"]["phase"])
    """)
    p1 = pipeline("one", publish, read)
    p2 = pipeline("two", sh("look", "cp /kratix/input/object.yaml /kratix/metadata/object.yaml"))
    pr = promise(workflows={("resource", "configure"): [p1, p2]})
    req = request()
    result = run_workflow(runner, pr, req.body, "resource", "configure", settings(kube_api="true"), request=req)
    assert result.succeeded, result.error
    one, two = result.pipelines
    assert one.published_status is not None and one.published_status["both"] == "published"
    assert one.metadata_files["seen"] == b"published"
    assert two.published_status is None  # it wrote nothing through the API
    seen = yaml.safe_load(two.metadata_files["object.yaml"])["status"]
    assert (seen["phase"], seen["both"]) == ("published", "status.yaml")
    assert (result.status["phase"], result.status["both"]) == ("published", "status.yaml")
    assert result.status["kratix"]["workflows"]["pipelines"][0]["phase"] == "Succeeded"


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_runs_are_isolated_and_network_none_leaves_only_the_api(runner):
    """Each run has its own token and CA: run 1's token is refused by run 2's API. With
    `network: none` the API answers on loopback and nothing else is reachable."""
    grab = sh("grab", "cp /var/run/secrets/kubernetes.io/serviceaccount/token "
                      "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt /kratix/metadata/")
    pr = promise(workflows={("resource", "configure"): [pipeline("one", grab)]})
    req = request()
    first = run_workflow(runner, pr, req.body, "resource", "configure", settings(kube_api="true"), request=req)
    assert first.succeeded, first.error
    token = first.pipelines[0].metadata_files["token"].decode()
    probe = _py("probe", """
        import json, os, socket, ssl, urllib.error, urllib.request
        sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
        ctx = ssl.create_default_context(cafile=sa + "ca.crt")
        url = "https://127.0.0.1:6443/apis/example.io/v1/namespaces/team-a/webs/shop"
        def get(token):
            req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
            try:
                return urllib.request.urlopen(req, context=ctx, timeout=5).status
            except urllib.error.HTTPError as e:
                return e.code
        out = {"own": get(open(sa + "token").read()), "other": get(os.environ["OTHER_TOKEN"]),
               "none": get("")}
        try:
            socket.create_connection(("1.1.1.1", 53), timeout=2)
            out["outside"] = "reachable"
        except OSError as e:
            out["outside"] = type(e).__name__
        out["ca"] = open(sa + "ca.crt").read()
        open("/kratix/metadata/probe.json", "w").write(json.dumps(out))
    """)
    probe.env = [{"name": "OTHER_TOKEN", "value": token}]
    pr = promise(workflows={("resource", "configure"): [pipeline("two", probe)]})
    second = run_workflow(runner, pr, req.body, "resource", "configure",
                          settings(kube_api="true", network="none"), request=req)
    assert second.succeeded, second.error
    found = json.loads(second.pipelines[0].metadata_files["probe.json"])
    assert (found["own"], found["other"], found["none"]) == (200, 401, 401)
    assert found["outside"] != "reachable"
    assert found["ca"] != first.pipelines[0].metadata_files["ca.crt"].decode()  # a CA per run
    assert token not in second.pipelines[0].containers[0].logs


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_every_pipeline_has_the_api_unless_disabled_and_failures_keep_the_published_status(runner):
    """auto (the default) gives every pipeline an API, rbac or not, as every Kratix pipeline pod
    has a service account: kratix-sdk's publish_status works unchanged. false gives none."""
    plain = sh("plain", "env | grep -c KUBERNETES_ > /kratix/metadata/count || true")
    pr = promise(workflows={("resource", "configure"): [pipeline("plain", plain)]})
    req = request()
    result = run_workflow(runner, pr, req.body, "resource", "configure", settings(), request=req)
    assert result.succeeded and result.pipelines[0].metadata_files["count"] == b"8\n"
    result = run_workflow(runner, pr, req.body, "resource", "configure", settings(kube_api="false"), request=req)
    assert result.succeeded and result.pipelines[0].metadata_files["count"] == b"0\n"
    fail = _py("fail", """
        import kratix_sdk as ks
        sdk = ks.KratixSDK()
        s = ks.Status(); s.set("phase", "half-way"); sdk.publish_status(sdk.read_resource_input(), s)
        raise SystemExit(3)
    """)
    pr = promise(workflows={("resource", "configure"): [pipeline("failing", fail)]})  # no rbac
    result = run_workflow(runner, pr, req.body, "resource", "configure", settings(), request=req)
    assert not result.succeeded and "exited with code 3" in (result.error or "")
    assert result.status["phase"] == "half-way"


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_auto_without_the_image_runs_plain_pipelines_without_api_and_fails_rbac_ones(runner, caplog):
    """The sidecar's image is missing (and cannot be pulled): a pipeline that declares rbac
    fails saying so; one that does not runs without an API, and the log says why, once."""
    absent = "promisebot/no-such-image:0"
    plain = sh("plain", "env | grep -c KUBERNETES_ > /kratix/metadata/count || true")
    pr = promise(workflows={("resource", "configure"): [pipeline("plain", plain)]})
    req = request()
    with caplog.at_level("WARNING", logger="promisebot.runner"):
        for _ in range(2):
            result = run_workflow(runner, pr, req.body, "resource", "configure",
                                  settings(kube_api_image=absent), request=req)
            assert result.succeeded and result.pipelines[0].metadata_files["count"] == b"0\n"
    warnings = [r.getMessage() for r in caplog.records if "runner.kubernetesApi" in r.getMessage()]
    assert len(warnings) == 1 and absent in warnings[0] and "run without a Kubernetes API" in warnings[0]
    failing = promise(workflows={("resource", "configure"): [pipeline("plain", sh("c", "exit 4"))]})
    result = run_workflow(runner, failing, req.body, "resource", "configure", settings(kube_api_image=absent),
                          request=req)
    assert not result.succeeded and "exited with code 4; note: this run had no Kubernetes API" in (result.error or "")
    assert absent in (result.error or "")
    granted = pipeline("granted", sh("c", "true"))
    granted.rbac = PipelineRBAC()
    pr = promise(workflows={("resource", "configure"): [granted]})
    result = run_workflow(runner, pr, req.body, "resource", "configure", settings(kube_api_image=absent), request=req)
    assert not result.succeeded
    assert "the Kubernetes API sidecar (runner.kubernetesApi.image)" in (result.error or "")
    assert absent in (result.error or "")
    result = run_workflow(runner, promise(workflows={("resource", "configure"): [pipeline("plain", plain)]}),
                          req.body, "resource", "configure", settings(kube_api="true", kube_api_image=absent),
                          request=req)
    assert not result.succeeded and "runner.kubernetesApi.image" in (result.error or "")


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_reconcile_records_the_published_and_the_written_status(tmp_path):
    """A reconcile of the same Promise from a platform repo (its ConfigMaps next to it): the
    object's recorded status holds the published status and status.yaml, and the outputs land."""
    from reconcile_fixtures import Env, destination

    from bot.model.objects import Ref

    env = Env(tmp_path)
    env.write("destinations/dev.yaml", destination("dev", {"environment": "test"}))
    (env.platform / "promises").mkdir()
    (env.platform / "promises" / "example.yaml").write_text(PROMISE_YAML)
    (env.platform / "requests").mkdir()
    (env.platform / "requests" / "shop.yaml").write_text(REQUEST_YAML)
    env.commit("install")
    report = env.reconcile()
    assert [o.state for o in report.outcomes] == ["succeeded"], [o.error for o in report.outcomes]
    status = env.bookkeeping().get(Ref("Example.marketplace.kratix.io", "shop", "team-a")).status
    assert status["phase"] == "updates-from-mid-stage"
    assert status["message"] == "Resource requested"  # the last pipeline's Pending, completed
    files = env.files()
    assert any(p.endswith("/deployment.yaml") for p in files), sorted(files)
    configmap = next(v for p, v in files.items() if p.endswith("/configmap.json"))
    assert json.loads(configmap)["data"] == {"size": "large"}


def test_saved_results_keep_the_published_status_and_key_on_what_the_api_serves():
    from runners.base import PipelineJob, PipelineResult
    from runners.saved import dump_result, job_key, load_result

    result = PipelineResult(pipeline="p", succeeded=True, published_status={"phase": "mid"})
    loaded = load_result(dump_result(result))
    assert loaded is not None and loaded.published_status == {"phase": "mid"}
    granted = pipeline("p", sh("c", "true"))
    granted.rbac = PipelineRBAC(permissions=[Permission(("",), ("get",), ("configmaps",))])
    env = [("KRATIX_WORKFLOW_TYPE", "resource"), ("KRATIX_OBJECT_NAMESPACE", "default")]

    def key(data: str, rbac: PipelineRBAC | None = granted.rbac) -> str:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": data}}
        granted.rbac = rbac
        return job_key(PipelineJob(granted, "resource", "configure", {}, env, settings(),
                                   kube=kubeapi.KubeContext(manifests=[cm])))

    assert key("a") == key("a") != key("b")  # a served ConfigMap changed: run again
    assert key("a", None) == key("b", None)  # no rbac, auto: no API, nothing served


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_a_sidecar_that_cannot_serve_fails_the_pipeline_clearly(runner):
    pr = promise(workflows={("resource", "configure"): [pipeline("p", sh("c", "true"))]})
    req = request()
    # busybox has no python3: the sidecar cannot start.
    result = run_workflow(runner, pr, req.body, "resource", "configure",
                          settings(kube_api="true", kube_api_image="promisebot/busybox:latest"), request=req)
    assert not result.succeeded
    assert "the Kubernetes API sidecar (runner.kubernetesApi.image) cannot start" in (result.error or "")
