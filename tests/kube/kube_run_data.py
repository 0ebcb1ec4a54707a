"""A run.json for the Kubernetes API tests: a Redis request, its Promise, granted resources."""

from __future__ import annotations

import copy
from typing import Any

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

REDIS = {
    "apiVersion": "marketplace.kratix.io/v1alpha1",
    "kind": "Redis",
    "metadata": {"name": "example", "namespace": "default", "labels": {"kratix.io/promise-name": "redis"},
                 "generation": 3, "resourceVersion": "7", "uid": "1234"},
    "spec": {"size": "small"},
    "status": {"message": "Pending", "conditions": [{"type": "Reconciled", "status": "Unknown"}]},
}

PROMISE = {
    "apiVersion": "platform.kratix.io/v1alpha1",
    "kind": "Promise",
    "metadata": {"name": "redis", "generation": 1},
    "spec": {"api": {"kind": "CustomResourceDefinition"}},
    "status": {"message": "Promise configured"},
}

CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": "default", "labels": {"team": "a"}},
             "data": {"region": "eu"}}
OTHER_CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "other", "namespace": "default", "labels": {"team": "b"}},
                   "data": {"x": "y"}}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "tools"},
          "data": {"password": "c2VjcmV0"}}


def make_run(**overrides: Any) -> dict[str, Any]:
    """A run.json; keyword arguments replace top-level keys."""
    run: dict[str, Any] = {
        "object": copy.deepcopy(REDIS),
        "objectResource": {"group": "marketplace.kratix.io", "version": "v1alpha1", "plural": "redis",
                           "kind": "Redis", "namespaced": True},
        "promise": copy.deepcopy(PROMISE),
        "resources": [
            {"group": "", "version": "v1", "plural": "configmaps", "kind": "ConfigMap", "namespaced": True,
             "object": copy.deepcopy(CONFIGMAP)},
            {"group": "", "version": "v1", "plural": "configmaps", "kind": "ConfigMap", "namespaced": True,
             "object": copy.deepcopy(OTHER_CONFIGMAP)},
            {"group": "", "version": "v1", "plural": "secrets", "kind": "Secret", "namespaced": True,
             "object": copy.deepcopy(SECRET)},
        ],
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"],
             "resourceNames": [], "namespace": "default"},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["creds"],
             "namespace": "tools"},
        ],
        "serviceAccount": {"name": "redis-resource-pipeline", "namespace": "default"},
    }
    run.update(overrides)
    return run
