"""Everything a job needs, built once per process from the configuration: the forge clients,
the repository cache, the shared backend (Redis or memory) and the pipeline runner. The web
process builds one for its in-process worker; `promisebot worker` builds its own from the same
environment, so a job runs the same wherever it lands."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from bot.forges.base import Event, Forge
from bot.jobs.backend import Backend, make_backend
from bot.jobs.repos import RepoCache
from bot.server.config import BotConfig, ConfigError
from bot.server.metrics import count_forge_call
from runners.base import Runner

if TYPE_CHECKING:  # PyGithub is imported when a GitHub event first needs it
    from bot.forges.github import GitHubForge


def _docker_runner() -> Runner:
    from runners.docker import DockerRunner

    return DockerRunner()


@dataclass
class Services:
    config: BotConfig
    backend: Backend
    repos: RepoCache
    runner_factory: Callable[[], Runner] = _docker_runner
    _forges: dict[str, Forge] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: BotConfig, runner_factory: Callable[[], Runner] = _docker_runner) -> Services:
        return cls(config, make_backend(config.redis_url), RepoCache(config.data_dir), runner_factory)

    def forge(self, event: Event) -> Forge:
        """The client for the event's forge (a GitHub App's bound to the installation it names)."""
        if event.forge != "github":
            return self._cached("gitlab")
        github = self.github()
        if github.app is None:
            return github
        if event.installation_id is None:
            raise ConfigError("a GitHub App event without installation.id: cannot authenticate")
        return github.for_installation(event.installation_id)

    def github(self) -> GitHubForge:
        """This process's GitHub client: a token's, or a GitHub App's (one token cache for every
        installation; `for_installation` binds one)."""
        return cast("GitHubForge", self._cached("github"))

    def _cached(self, name: str) -> Forge:
        with self._lock:
            if name not in self._forges:
                self._forges[name] = self._make_forge(name)
            return self._forges[name]

    def _make_forge(self, name: str) -> Forge:
        c = self.config
        if name == "github":
            from bot.forges.github import GitHubForge

            # A job makes three writes (pending status, comment, final status): no pacing between
            # them; a secondary rate limit answers 403 with Retry-After, which the queue honours.
            if c.github_token:
                return GitHubForge(api_url=c.github_api_url, token=c.github_token, on_call=count_forge_call,
                                   seconds_between_writes=0.0)
            if c.github_app_id and c.github_app_private_key:
                return GitHubForge(api_url=c.github_api_url, app_id=c.github_app_id,
                                   private_key=c.github_app_private_key, on_call=count_forge_call,
                                   seconds_between_writes=0.0)
            raise ConfigError("a GitHub event, but GitHub is not configured")
        from bot.forges.gitlab import GitLabForge

        if not c.gitlab_token:
            raise ConfigError("a GitLab event, but GitLab is not configured")
        return GitLabForge(c.gitlab_token, url=c.gitlab_url, on_call=count_forge_call)
