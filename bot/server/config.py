"""The bot's configuration, from environment variables; each can instead be read from a file
named by the same variable with `_FILE` appended (Docker and Kubernetes secrets). docs/bot.md
has the table. Secrets are kept out of `repr` and never logged.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import PromisebotError

DEFAULT_GITHUB_API = "https://api.github.com"
DEFAULT_GITLAB_URL = "https://gitlab.com"


class ConfigError(PromisebotError):
    """A setting is missing, unreadable or contradictory; the message names the variable."""


def setting(environ: Mapping[str, str], name: str) -> str | None:
    """`name`, or the contents of the file `name_FILE` names (one trailing newline dropped)."""
    path = environ.get(f"{name}_FILE")
    if path:
        if name in environ:
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        try:
            return Path(path).read_text().removesuffix("\n")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    value = environ.get(name)
    return value if value else None


def setting_list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class BotConfig:
    github_token: str | None = field(default=None, repr=False)
    github_app_id: str | None = None
    github_app_private_key: str | None = field(default=None, repr=False)
    github_api_url: str = DEFAULT_GITHUB_API
    github_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    gitlab_url: str = DEFAULT_GITLAB_URL
    gitlab_token: str | None = field(default=None, repr=False)
    gitlab_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    repo_allowlist: tuple[str, ...] = ()
    redis_url: str | None = None
    data_dir: Path = Path(os.path.expanduser("~/.cache/promisebot"))
    plan_drafts: bool = False

    @property
    def github(self) -> bool:
        return bool(self.github_token or self.github_app_id)

    @property
    def gitlab(self) -> bool:
        return bool(self.gitlab_token)

    def allowed(self, full_name: str) -> bool:
        """Whether events of the repository may be processed (no allowlist: every repository)."""
        return not self.repo_allowlist or any(fnmatch.fnmatchcase(full_name, g) for g in self.repo_allowlist)

    def secrets(self) -> list[str]:
        """Every secret value the configuration holds (for redaction)."""
        values = [self.github_token, self.github_app_private_key, self.gitlab_token,
                  *self.github_webhook_secrets, *self.gitlab_webhook_secrets]
        return [v for v in values if v]


def load_config(environ: Mapping[str, str] | None = None) -> BotConfig:
    """The configuration from `environ` (default: the process environment). ConfigError when a
    configured forge has no webhook secret, or a GitHub App lacks its key."""
    env = os.environ if environ is None else environ
    cache = Path(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "promisebot"
    config = BotConfig(
        github_token=setting(env, "PROMISEBOT_GITHUB_TOKEN"),
        github_app_id=setting(env, "PROMISEBOT_GITHUB_APP_ID"),
        github_app_private_key=setting(env, "PROMISEBOT_GITHUB_APP_PRIVATE_KEY"),
        github_api_url=(setting(env, "PROMISEBOT_GITHUB_API_URL") or DEFAULT_GITHUB_API).rstrip("/"),
        github_webhook_secrets=setting_list(setting(env, "PROMISEBOT_GITHUB_WEBHOOK_SECRET")),
        gitlab_url=(setting(env, "PROMISEBOT_GITLAB_URL") or DEFAULT_GITLAB_URL).rstrip("/"),
        gitlab_token=setting(env, "PROMISEBOT_GITLAB_TOKEN"),
        gitlab_webhook_secrets=setting_list(setting(env, "PROMISEBOT_GITLAB_WEBHOOK_SECRET")),
        repo_allowlist=setting_list(setting(env, "PROMISEBOT_REPO_ALLOWLIST")),
        redis_url=setting(env, "REDIS_URL"),
        data_dir=Path(setting(env, "PROMISEBOT_DATA_DIR") or cache),
        plan_drafts=(setting(env, "PROMISEBOT_PLAN_DRAFTS") or "").lower() in ("1", "true", "yes"),
    )
    if config.github_app_id and not config.github_app_private_key:
        raise ConfigError("PROMISEBOT_GITHUB_APP_ID is set without PROMISEBOT_GITHUB_APP_PRIVATE_KEY")
    if config.github and not config.github_webhook_secrets:
        raise ConfigError("GitHub is configured but PROMISEBOT_GITHUB_WEBHOOK_SECRET is not set: refusing to "
                          "accept unverifiable webhooks")
    if config.gitlab and not config.gitlab_webhook_secrets:
        raise ConfigError("GitLab is configured but PROMISEBOT_GITLAB_WEBHOOK_SECRET is not set: refusing to "
                          "accept unverifiable webhooks")
    if not config.github and not config.gitlab:
        raise ConfigError("no forge is configured: set PROMISEBOT_GITHUB_TOKEN (or PROMISEBOT_GITHUB_APP_ID and "
                          "PROMISEBOT_GITHUB_APP_PRIVATE_KEY) and/or PROMISEBOT_GITLAB_TOKEN")
    return config
