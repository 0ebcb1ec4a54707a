"""The loaded objects the pure tests (spec hash, re-run decisions) start from: the `redis`
Promise and its `my-redis` request, as the platform loader would give them."""

from __future__ import annotations

from bot.model.objects import Promise, ResourceRequest, Source


def redis_promise(spec: dict | None = None, labels: dict | None = None) -> Promise:
    """The `redis` Promise; `spec` defaults to {"dependencies": []}."""
    body = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise",
            "metadata": {"name": "redis", "labels": dict(labels or {})},
            "spec": spec if spec is not None else {"dependencies": []}}
    return Promise(name="redis", body=body, source=Source("promises/redis.yaml"))


def redis_request(spec: dict | None = None, labels: dict | None = None) -> ResourceRequest:
    """The `my-redis` request (Redis, marketplace.kratix.io/v1alpha1); `spec` defaults to {"size": "small"}."""
    body = {"apiVersion": "marketplace.kratix.io/v1alpha1", "kind": "Redis",
            "metadata": {"name": "my-redis", "namespace": "default", "labels": dict(labels or {})},
            "spec": spec if spec is not None else {"size": "small"}}
    return ResourceRequest(promise="redis", api_version="marketplace.kratix.io/v1alpha1", kind="Redis",
                           group="marketplace.kratix.io", name="my-redis", namespace="default", body=body,
                           source=Source("requests/my-redis.yaml"))
