"""What a pipeline run's Kubernetes API serves, decided on the host (docs/runner.md, "The
Kubernetes API").

Kratix runs each pipeline as a Job whose pod has a service account: the object's own resource
(and, for promise workflows, promises) are granted by Kratix, and `spec.rbac.permissions` grant
more. promisebot serves a small API per run from a sidecar (`bot.kube.server`); this module
builds that run's `run.json`: the object, its resource, the Promise, the rules (Kratix's implicit
ones, then the pipeline's permissions) and the objects those rules let the pipeline read:

* Kubernetes objects written in the platform repo (documents that are not Kratix objects, kept
  by the loader as `Platform.manifests`), e.g. ConfigMaps;
* Secrets, never from the platform repo: resolved through the `SecretResolver` (the
  `secretsDir` layout `<dir>/<namespace>/<name>/<key>`, then `PROMISEBOT_SECRET_*` variables),
  only those named in a permission's `resourceNames` or found in the secrets directory.

Pure apart from reading secrets; the sidecar is started by `runners/sidecar.py`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.model.objects import KRATIX_GROUP, SecretRef
from bot.secrets import ENV_PREFIX, SecretNotFoundError, SecretResolver, env_var_name

KRATIX_NAMESPACE = "kratix-platform-system"  # Kratix's SystemNamespace: where promise pipelines run
HOST, PORT = "127.0.0.1", 6443
SERVICE_ACCOUNT_DIR = "var/run/secrets/kubernetes.io/serviceaccount"
READ_VERBS = ("get", "list", "*")

# Plurals and scope of the built-in kinds a platform repo may hold; other kinds: lower-case + "s",
# namespaced.
_PLURALS = {"Endpoints": "endpoints", "Ingress": "ingresses", "NetworkPolicy": "networkpolicies",
            "PodSecurityPolicy": "podsecuritypolicies", "StorageClass": "storageclasses",
            "PriorityClass": "priorityclasses", "IngressClass": "ingressclasses"}
_CLUSTER_KINDS = {"Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
                  "CustomResourceDefinition", "StorageClass", "PriorityClass", "IngressClass",
                  "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService"}


@dataclass(slots=True)
class KubeContext:
    """What the workflow hands the runner so the API can serve more than the object itself."""

    promise: dict[str, Any] | None = None  # the Promise's body (None in promise workflows)
    manifests: Sequence[dict[str, Any]] = ()  # Platform.manifests
    secrets: SecretResolver | None = None


def wanted(mode: str) -> bool:
    """runner.kubernetesApi.enabled: "true" or "auto" give runs an API, "false" none."""
    return mode != "false"


def required(mode: str, declares_rbac: bool) -> bool:
    """Whether a run fails without its API: always with "true"; with "auto", when the pipeline
    declares spec.rbac (otherwise it runs without one if the sidecar's image is missing)."""
    return mode == "true" or (mode != "false" and declares_rbac)


def env_vars() -> list[tuple[str, str]]:
    """What the kubelet sets for the `kubernetes` Service, pointing at the run's API."""
    url = f"tcp://{HOST}:{PORT}"
    return [("KUBERNETES_SERVICE_HOST", HOST), ("KUBERNETES_SERVICE_PORT", str(PORT)),
            ("KUBERNETES_SERVICE_PORT_HTTPS", str(PORT)), ("KUBERNETES_PORT", url),
            ("KUBERNETES_PORT_443_TCP", url), ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
            ("KUBERNETES_PORT_443_TCP_PORT", str(PORT)), ("KUBERNETES_PORT_443_TCP_ADDR", HOST)]


def resource_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """{group, version, plural, kind, namespaced} of a Kubernetes object."""
    api_version, kind = str(manifest.get("apiVersion") or ""), str(manifest.get("kind") or "")
    group, _, version = api_version.rpartition("/")
    plural = _PLURALS.get(kind) or (kind.lower() + ("es" if kind.lower().endswith(("s", "x", "ch")) else "s"))
    return {"group": group, "version": version, "plural": plural, "kind": kind,
            "namespaced": kind not in _CLUSTER_KINDS}


def build_run(obj: dict[str, Any], env: Sequence[tuple[str, str]], pipeline_name: str,
              rbac_permissions: Iterable[dict[str, Any]], service_account: str,
              context: KubeContext | None) -> dict[str, Any]:
    """The run.json of one pipeline run (see `bot.kube.server`)."""
    kratix = dict(env)
    wtype = kratix.get("KRATIX_WORKFLOW_TYPE", "resource")
    context = context or KubeContext()
    if wtype == "promise":
        object_resource = {"group": KRATIX_GROUP, "version": "v1alpha1", "plural": "promises", "kind": "Promise",
                           "namespaced": False}
        namespace = KRATIX_NAMESPACE
        rules = [_rule([KRATIX_GROUP], ["promises", "promises/status"],
                       ["get", "list", "update", "create", "patch"], [], "*")]
    else:
        object_resource = {"group": kratix.get("KRATIX_OBJECT_GROUP", ""),
                           "version": kratix.get("KRATIX_OBJECT_VERSION", ""),
                           "plural": kratix.get("KRATIX_CRD_PLURAL", ""),
                           "kind": kratix.get("KRATIX_OBJECT_KIND", ""),
                           "namespaced": kratix.get("KRATIX_CLUSTER_SCOPED") != "true"}
        namespace = kratix.get("KRATIX_OBJECT_NAMESPACE") or "default"
        plural = object_resource["plural"]
        rules = [_rule([object_resource["group"]], [plural, f"{plural}/status"],
                       ["get", "list", "update", "create", "patch"], [], namespace)]
    for p in rbac_permissions:
        where = p.get("resourceNamespace") or namespace  # "" = the pipeline's namespace (a Role)
        rules.append(_rule(p.get("apiGroups") or [], p.get("resources") or [], p.get("verbs") or [],
                           p.get("resourceNames") or [], where))
    resources = [{**resource_of(m), "object": m} for m in context.manifests
                 if resource_of(m)["kind"] != "Secret" and _readable(rules, m)]
    if context.secrets is not None:
        resources += [{**resource_of(s), "object": s} for s in _secrets(rules, context.secrets)]
    return {"object": obj, "objectResource": object_resource, "promise": context.promise,
            "resources": resources, "rules": rules,
            "serviceAccount": {"name": service_account, "namespace": namespace},
            "pipeline": pipeline_name}


def service_account_files(token: str, ca_pem: bytes, namespace: str) -> dict[str, bytes]:
    """The files of /var/run/secrets/kubernetes.io/serviceaccount/."""
    return {"token": token.encode(), "ca.crt": ca_pem, "namespace": namespace.encode()}


def _rule(groups: Iterable[Any], resources: Iterable[Any], verbs: Iterable[Any], names: Iterable[Any],
          namespace: str) -> dict[str, Any]:
    return {"apiGroups": [str(g) for g in groups], "resources": [str(r) for r in resources],
            "verbs": [str(v) for v in verbs], "resourceNames": [str(n) for n in names], "namespace": namespace}


def _matches(rule: dict[str, Any], group: str, plural: str, name: str, namespace: str, verbs: Sequence[str]) -> bool:
    return ((group in rule["apiGroups"] or "*" in rule["apiGroups"])
            and (plural in rule["resources"] or "*" in rule["resources"])
            and any(v in rule["verbs"] for v in verbs)
            and (not rule["resourceNames"] or name in rule["resourceNames"])
            and (rule["namespace"] == "*" or rule["namespace"] == namespace))


def _readable(rules: Sequence[dict[str, Any]], manifest: Mapping[str, Any]) -> bool:
    res = resource_of(manifest)
    meta = manifest.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default") if res["namespaced"] else ""
    # A cluster-scoped object needs a rule for all namespaces (a ClusterRole), as in Kubernetes.
    return any(_matches(r, res["group"], res["plural"], str(meta.get("name") or ""), namespace, READ_VERBS)
               for r in rules)


def _secrets(rules: Sequence[dict[str, Any]], resolver: SecretResolver) -> list[dict[str, Any]]:
    """The Secrets the rules let the pipeline read, resolved (never read from the platform repo)."""
    wanted_refs: set[tuple[str, str]] = set()
    for rule in rules:
        if not _matches({**rule, "resourceNames": []}, "", "secrets", "", rule["namespace"], READ_VERBS):
            continue
        namespaces = _secret_namespaces(resolver) if rule["namespace"] == "*" else [rule["namespace"]]
        for ns in namespaces:
            names = rule["resourceNames"] or _secret_names(resolver, ns)
            wanted_refs.update((ns, n) for n in names)
    out = []
    for ns, name in sorted(wanted_refs):
        data = _secret_data(resolver, SecretRef(name, ns))
        if data:
            out.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": name, "namespace": ns},
                        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())}})
    return out


def _secrets_root(resolver: SecretResolver) -> Any:
    probe = resolver.file_path(SecretRef("n", "ns"), "k")
    return probe.parent.parent.parent if probe is not None else None


def _secret_namespaces(resolver: SecretResolver) -> list[str]:
    root = _secrets_root(resolver)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root is not None and root.is_dir() else []


def _secret_names(resolver: SecretResolver, namespace: str) -> list[str]:
    root = _secrets_root(resolver)
    where = root / namespace if root is not None else None
    return sorted(p.name for p in where.iterdir() if p.is_dir()) if where is not None and where.is_dir() else []


def _secret_data(resolver: SecretResolver, ref: SecretRef) -> dict[str, str]:
    """Every key of a secret: the files of its directory, then its environment variables (whose
    key is the rest of the variable's name, as written)."""
    keys: list[str] = []
    probe = resolver.file_path(ref, "k")
    if probe is not None and probe.parent.is_dir():
        keys += [p.name for p in probe.parent.iterdir() if p.is_file()]
    prefix = env_var_name(ref, "")
    if prefix.startswith(ENV_PREFIX):
        environ: Mapping[str, str] = getattr(resolver, "_environ", os.environ)
        keys += [k[len(prefix):] for k in environ if k.startswith(prefix) and len(k) > len(prefix)]
    data: dict[str, str] = {}
    for key in keys:
        try:
            data.setdefault(key, resolver.get(ref, key))
        except (SecretNotFoundError, ValueError):
            continue
    return data
