"""The job's configuration and services in a CI job: the forge's token and API URL from the CI's
variables (the `PROMISEBOT_*` variables of docs/bot.md still apply and come first), no webhook
secret (there is no webhook), no Redis (the job runs in this process, on the memory backend), the
repository cache in a fresh temporary directory (`PROMISEBOT_DATA_DIR` to keep it elsewhere), and
the pipelines on the Docker engine (`DOCKER_HOST`, or the local socket).

`borrow_objects` lets the fresh cache clone use the objects of the job's own checkout
(`--platform-path`), so the fetch from the forge brings only what the checkout lacks.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.ci.env import CiEnvError, gitlab_base_url
from bot.ci.journal import Journal, JournalForge
from bot.forges.base import Event, Forge, ForgeName
from bot.jobs.backend import make_backend
from bot.jobs.repos import RepoCache
from bot.jobs.services import Services
from bot.server.config import DEFAULT_GITHUB_API, BotConfig, setting, setting_list
from runners.base import Runner


def _docker_runner() -> Runner:
    from runners.docker import DockerRunner

    return DockerRunner()


@dataclass
class CiServices(Services):
    """`Services` whose forge records the job's writes (`journal`)."""

    journal: Journal = field(default_factory=Journal)

    def forge(self, event: Event) -> Forge:
        return JournalForge(super().forge(event), self.journal)


def build_services(config: BotConfig, runner_factory: Callable[[], Runner] | None = None) -> CiServices:
    return CiServices(config, make_backend(None), RepoCache(config.data_dir), runner_factory or _docker_runner)


def ci_config(environ: Mapping[str, str], forge: ForgeName, data_dir: Path) -> BotConfig:
    """The configuration of a job on `forge`, from the CI environment."""
    allowlist = setting_list(setting(environ, "PROMISEBOT_REPO_ALLOWLIST"))
    drafts = (setting(environ, "PROMISEBOT_PLAN_DRAFTS") or "").lower() in ("1", "true", "yes")
    if forge == "github":
        token = setting(environ, "PROMISEBOT_GITHUB_TOKEN") or environ.get("GITHUB_TOKEN", "").strip()
        if not token:
            raise CiEnvError("GITHUB_TOKEN is not set: give the step `env: GITHUB_TOKEN: ${{ github.token }}` "
                             "(or a token of your own as PROMISEBOT_GITHUB_TOKEN)")
        api = setting(environ, "PROMISEBOT_GITHUB_API_URL") or environ.get("GITHUB_API_URL", "").strip()
        return BotConfig(github_token=token, github_api_url=_http_url(api or DEFAULT_GITHUB_API, "GITHUB_API_URL"),
                         repo_allowlist=allowlist, plan_drafts=drafts, data_dir=data_dir)
    gitlab_token = setting(environ, "PROMISEBOT_GITLAB_TOKEN")
    if not gitlab_token:
        raise CiEnvError("PROMISEBOT_GITLAB_TOKEN is not set: a project or group access token with the api and "
                         "write_repository scopes, as a masked CI/CD variable (CI_JOB_TOKEN cannot comment on "
                         "merge requests or set commit statuses)")
    url = setting(environ, "PROMISEBOT_GITLAB_URL") or gitlab_base_url(environ)
    return BotConfig(gitlab_token=gitlab_token, gitlab_url=_http_url(url, "CI_API_V4_URL"), repo_allowlist=allowlist,
                     plan_drafts=drafts, data_dir=data_dir)


def _http_url(url: str, name: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise CiEnvError(f"{name} must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def data_dir(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """Where the job clones the platform repo, and whether it is a fresh temporary directory (the
    caller removes it): `PROMISEBOT_DATA_DIR` when set, else a new directory under `RUNNER_TEMP`
    (GitHub Actions empties it after each job) or the system's temporary directory."""
    chosen = setting(environ, "PROMISEBOT_DATA_DIR")
    if chosen:
        return Path(chosen), False
    parent = environ.get("RUNNER_TEMP", "").strip() or None
    if parent:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="promisebot-ci-", dir=parent)), True


def borrow_objects(clone: Path, checkout: Path) -> str:
    """Make the not yet existing cache clone `clone` borrow the objects of `checkout` (Git
    alternates), so its first fetch downloads only what the checkout lacks. Only a complete
    checkout is borrowed from: a shallow or partial clone lacks objects its refs reach, which a
    fetch would then take as present. Returns what was done, for the log."""
    def ask(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    if (clone / "HEAD").exists():
        return "the clone exists already"
    common = ask("rev-parse", "--git-common-dir")
    if not common:
        return f"{checkout} is not a Git checkout"
    if ask("rev-parse", "--is-shallow-repository") != "false":
        return f"{checkout} is a shallow clone"
    if ask("config", "--get", "extensions.partialClone") or ask("config", "--get-regexp", r"^remote\..*\.promisor$"):
        return f"{checkout} is a partial clone"
    objects = (checkout / common / "objects").resolve()
    if not objects.is_dir():
        return f"{checkout} has no object directory"
    info = clone / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text(f"{objects}\n")
    return f"borrowing the objects of {objects}"
