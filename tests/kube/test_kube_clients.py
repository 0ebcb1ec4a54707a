"""Real clients against bot.kube.server: kubectl (when installed) and the official `kubernetes`
Python package (when importable; kratix-sdk's `publish_status` goes through it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_serving import served_run

from bot.kube.pki import RunCredentials
from bot.kube.server import KubeServer


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[tuple[str, RunCredentials, Path, KubeServer]]:
    directory = tmp_path / "run"
    with served_run(directory) as (url, creds, server):
        yield url, creds, directory, server


def kubectl(api_server: tuple[str, RunCredentials, Path, KubeServer], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    url, creds, directory, _ = api_server
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "run",
        "clusters": [{"name": "run", "cluster": {"server": url, "certificate-authority": str(directory / "ca.crt")}}],
        "users": [{"name": "pipeline", "user": {"token": creds.token}}],
        "contexts": [{"name": "run", "context": {"cluster": "run", "user": "pipeline", "namespace": "default"}}],
    }))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "KUBECONFIG": str(config)}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, timeout=60)


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@needs_kubectl
def test_kubectl_reads(api_server, tmp_path):
    r = kubectl(api_server, tmp_path, "get", "redis", "example", "-n", "default", "-o", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["spec"] == {"size": "small"}
    r = kubectl(api_server, tmp_path, "get", "configmap", "settings", "-o", "jsonpath={.data.region}")
    assert (r.returncode, r.stdout) == (0, "eu"), r.stderr
    r = kubectl(api_server, tmp_path, "get", "cm", "-o", "name")
    assert r.stdout.split() == ["configmap/settings", "configmap/other"], r.stderr
    r = kubectl(api_server, tmp_path, "get", "promise", "redis")
    assert r.returncode == 0 and r.stdout.split()[:3] == ["NAME", "AGE", "redis"], r.stderr
    r = kubectl(api_server, tmp_path, "get", "secret", "creds", "-n", "default")
    assert r.returncode != 0 and "Error from server (Forbidden)" in r.stderr


@needs_kubectl
def test_kubectl_status_patch(api_server, tmp_path):
    server = api_server[3]
    r = kubectl(api_server, tmp_path, "patch", "redis", "example", "--subresource=status", "--type=merge",
                "-p", '{"status":{"url":"redis://x"}}')
    assert r.returncode == 0, r.stderr
    assert (server.api.status() or {})["url"] == "redis://x"
    r = kubectl(api_server, tmp_path, "patch", "redis", "example", "--type=merge", "-p", '{"spec":{"size":"x"}}')
    assert r.returncode != 0 and "promisebot serves get on" in r.stderr
    r = kubectl(api_server, tmp_path, "patch", "redis", "example", "--subresource=status", "-p", '{"status":{}}')
    assert r.returncode != 0 and "the body of the request was in an unknown format" in r.stderr


def test_kubernetes_python_client(api_server):
    kubernetes = pytest.importorskip("kubernetes")
    url, creds, directory, server = api_server
    configuration = kubernetes.client.Configuration()
    configuration.host = url
    configuration.ssl_ca_cert = str(directory / "ca.crt")
    configuration.api_key = {"authorization": f"Bearer {creds.token}"}
    api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(configuration))
    obj = api.get_namespaced_custom_object("marketplace.kratix.io", "v1alpha1", "default", "redis", "example")
    assert obj["metadata"]["name"] == "example"
    api.patch_namespaced_custom_object_status("marketplace.kratix.io", "v1alpha1", "default", "redis", "example",
                                              {"status": {"url": "redis://x"}})
    assert (server.api.status() or {})["url"] == "redis://x"
