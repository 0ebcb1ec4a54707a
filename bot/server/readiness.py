"""What `GET /readyz` checks: Redis (when used), the Docker engine where this process runs the
jobs (the embedded default; with Redis the web process only enqueues, and each worker needs an
engine of its own), and each configured forge's API answering (an unauthenticated reachability
check: no token is sent)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from bot.jobs.services import Services


def _redis(services: Services) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            assert services.backend.redis is not None
            services.backend.redis.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return f"Redis does not answer: {type(exc).__name__}"
        return None
    return check


def _docker() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return f"the Docker engine does not answer: {type(exc).__name__}"
    return None


def _http(url: str) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - the configured forge URL
                return None
        except urllib.error.HTTPError:
            return None  # it answered
        except OSError as exc:
            return f"{url} does not answer: {exc}"
    return check


def checks(services: Services) -> dict[str, Callable[[], str | None]]:
    out: dict[str, Callable[[], str | None]] = {}
    if services.backend.redis is not None:
        out["redis"] = _redis(services)
    else:
        out["docker"] = _docker
    if services.config.github:
        out["github"] = _http(services.config.github_api_url)
    if services.config.gitlab:
        out["gitlab"] = _http(f"{services.config.gitlab_url}/api/v4/version")
    return out
