"""Where a GitStateStore lives and how git authenticates to it (contract §3.6).

Credentials never go into URLs or `.git/config`: basic auth is answered by a GIT_ASKPASS script
(it holds no secret) reading environment variables set only on the git process; the SSH key and
known_hosts go to 0600 files in a private temporary directory named by GIT_SSH_COMMAND, removed
after the session. ssh reads no user or system config and trusts only the secret's `knownHosts`
(StrictHostKeyChecking). Failures name the secret keys to check and never carry key material
(the secret values, and each line of an SSH key, are redacted).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import tempfile
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import PromisebotError
from bot.model.objects import SecretRef, StateStore
from bot.secrets import Secret, SecretNotFoundError, SecretResolver, redact
from bot.statestores.base import StateStoreError

BASIC_AUTH, SSH_AUTH, GITHUB_APP_AUTH = "basicAuth", "ssh", "githubApp"
GITHUB_API_URL_ENV = "PROMISEBOT_GITHUB_API_URL"
_APPS: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (app id, API URL) -> GitHubApp, a few at most
_APPS_MAX = 16
_APPS_LOCK = threading.Lock()


def github_api_url(remote_url: str) -> str:
    """The GitHub API serving a repository URL: PROMISEBOT_GITHUB_API_URL when set, else
    api.github.com for github.com and https://HOST/api/v3 for GitHub Enterprise."""
    configured = os.environ.get(GITHUB_API_URL_ENV)
    if configured:
        return configured.rstrip("/")
    host = urllib.parse.urlsplit(remote_url).hostname or ""
    return "https://api.github.com" if host in ("github.com", "www.github.com") else f"https://{host}/api/v3"


def _github_app(app_id: str, private_key: str, api_url: str) -> Any:
    """A GitHub App client (bot/forges/github.py's, installation tokens cached until near
    expiry), one per App and API for every store of this process."""
    from bot.forges.github import GitHubApp

    with _APPS_LOCK:
        key = (app_id, api_url)
        if key not in _APPS:
            _APPS[key] = GitHubApp(app_id, private_key, api_url=api_url)
            while len(_APPS) > _APPS_MAX:
                _APPS.popitem(last=False)
        _APPS.move_to_end(key)
        return _APPS[key]
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9._-]+:")
_AUTH_FAILURES = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "returned error: 401",
    "permission denied (publickey",
)
_HOST_KEY_FAILURE = "host key verification failed"
# What ssh says about a host key, without fingerprints, file paths or advice about temp files.
_HOST_KEY_LINES = re.compile(
    r"Host key for \S+ has changed[^.]*\.|No \S+ host key is known for \S+[^.]*\.|Host key verification failed\."
)
_PERMISSION_FAILURES = ("returned error: 403", "permission denied")
_ASKPASS_SCRIPT = """#!/bin/sh
# promisebot GIT_ASKPASS helper: answers from the git process's environment, holds no secret.
case "$1" in
  Username*) printf '%s\\n' "$PROMISEBOT_GIT_USERNAME" ;;
  *) printf '%s\\n' "$PROMISEBOT_GIT_PASSWORD" ;;
esac
"""


@dataclass(frozen=True, slots=True)
class Remote:
    """Where the store lives: `url` as given to git, `transport` "local" | "http" | "ssh"."""

    url: str
    transport: str


def parse_remote(url: str, platform_root: Path) -> Remote:
    """The remote for a GitStateStore `url` (contract §3.6). Raises ValueError.

    Local paths and `file://` URLs are resolved against `platform_root` when relative;
    `http://` is accepted next to `https://` for loopback tests and local use.
    """
    url = (url or "").strip()
    if not url:
        raise ValueError("GitStateStore spec.url is empty")
    lower = url.lower()
    if lower.startswith(("https://", "http://")):
        authority = url.split("://", 1)[1].split("/", 1)[0]
        if ":" in authority.split("@")[0] and "@" in authority:
            raise ValueError(
                "GitStateStore spec.url must not contain a password; put it in the secret's `password` key"
            )
        return Remote(url, "http")
    if lower.startswith("ssh://") or _SCP_LIKE.match(url):
        return Remote(url, "ssh")
    if lower.startswith("file://"):
        url = url[len("file://") :]
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise ValueError(f"unsupported GitStateStore url scheme {scheme!r} (use https, http, ssh, file or a path)")
    path = Path(url).expanduser()
    return Remote(str(path if path.is_absolute() else (platform_root / path).resolve()), "local")


class GitAuth:
    """The environment of git commands that talk to a store's remote, and their failures."""

    def __init__(self, store: StateStore, remote: Remote, auth_method: str, secrets: SecretResolver,
                 scripts_dir: Path) -> None:
        self.store, self.remote, self.auth_method = store, remote, auth_method
        self._secrets = secrets
        self._scripts = scripts_dir  # where the GIT_ASKPASS script lives
        self.secret_values: list[Secret] = []  # redacted from every failure

    @contextmanager
    def env(self) -> Iterator[dict[str, str]]:
        """Environment for git commands that talk to the remote; secrets resolved here."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_VARIANT": "ssh"}
        ref = self.store.secret_ref
        if self.remote.transport == "http" and ref is not None:
            if self.auth_method == GITHUB_APP_AUTH:
                self.secret_values = self._github_app_credentials(ref)
            else:
                self.secret_values = [self._secret(ref, "username"), self._secret(ref, "password")]
            askpass = self._scripts / "askpass.sh"
            if not askpass.is_file():
                tmp = askpass.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(_ASKPASS_SCRIPT)
                tmp.chmod(stat.S_IRWXU)
                tmp.replace(askpass)
            env |= {
                "GIT_ASKPASS": str(askpass),
                "PROMISEBOT_GIT_USERNAME": self.secret_values[0].reveal(),
                "PROMISEBOT_GIT_PASSWORD": self.secret_values[1].reveal(),
            }
            yield env
        elif self.remote.transport == "ssh":
            if ref is None:
                raise ValueError(f"GitStateStore {self.store.name} uses authMethod ssh but has no secretRef")
            key, known = self._secret(ref, "sshPrivateKey"), self._secret(ref, "knownHosts")
            lines = (line.strip() for line in key.reveal().splitlines())
            self.secret_values = [key, *(Secret(line) for line in lines if len(line) >= 16)]
            with tempfile.TemporaryDirectory(prefix="promisebot-ssh-") as tmp_dir:
                key_file, hosts_file = Path(tmp_dir) / "id", Path(tmp_dir) / "known_hosts"
                for path, secret in ((key_file, key), (hosts_file, known)):
                    path.touch(mode=0o600)
                    text = secret.reveal()
                    path.write_text(text if text.endswith("\n") else text + "\n")
                env["GIT_SSH_COMMAND"] = (
                    f"ssh -F /dev/null -i {shlex.quote(str(key_file))} -o IdentitiesOnly=yes -o BatchMode=yes "
                    f"-o UserKnownHostsFile={shlex.quote(str(hosts_file))} -o GlobalKnownHostsFile=/dev/null "
                    "-o StrictHostKeyChecking=yes"
                )
                yield env
        else:
            self.secret_values = []
            yield env

    def _github_app_credentials(self, ref: SecretRef) -> list[Secret]:
        """Kratix's `authMethod: githubApp`: the secret's appID, installationID and privateKey
        give an installation token, used as the password of `x-access-token`."""
        app_id = self._secret(ref, "appID").reveal().strip()
        installation = self._secret(ref, "installationID").reveal().strip()
        key = self._secret(ref, "privateKey")
        where = f"GitStateStore {self.store.name}: GitHub App {app_id}, installation {installation}"
        try:
            token = _github_app(app_id, key.reveal(), github_api_url(self.remote.url)).installation_token(
                int(installation))
        except (ValueError, PromisebotError) as exc:  # a bad ID or key; the forge refused or could not be reached
            raise StateStoreError(f"{where}: {redact(str(exc), [key])}") from None
        lines = (line.strip() for line in key.reveal().splitlines())
        return [Secret("x-access-token"), Secret(token), key, *(Secret(line) for line in lines if len(line) >= 16)]

    def _secret(self, ref: SecretRef, key: str) -> Secret:
        try:
            return self._secrets.secret(ref, key)
        except SecretNotFoundError as exc:
            raise StateStoreError(f"GitStateStore {self.store.name}: {exc}") from None

    def remote_says(self, stderr: str) -> str:
        """What the server printed (its `remote:` lines, e.g. a hook's refusal), redacted."""
        lines = [line.strip()[len("remote:"):].strip() for line in stderr.splitlines()
                 if line.strip().startswith("remote:")]
        return redact(" ".join(line for line in lines if line)[-600:], self.secret_values)

    def describe_failure(self, where: str, stderr: str) -> str:
        """A git failure as a message naming the secret keys to check; never a secret."""
        detail = " ".join(line.strip() for line in stderr.splitlines() if line.strip())[-600:]
        detail = redact(detail, self.secret_values)
        lower = detail.lower()
        if self.remote.transport != "local":
            ref = self.store.secret_ref
            secret = f"secret {ref.namespace}/{ref.name}" if ref else "a secretRef (none is set)"
            if self.auth_method == SSH_AUTH and _HOST_KEY_FAILURE in stderr.lower():
                said = " ".join(_HOST_KEY_LINES.findall(stderr))
                return (f"host key verification failed: {where}: the server's host key is not the one in "
                        f"the knownHosts key of {secret}. ssh said: {said}")
            if any(marker in lower for marker in _AUTH_FAILURES):
                keys = "sshPrivateKey key" if self.auth_method == SSH_AUTH else "username/password keys"
                return f"authentication failed: {where}: check the {keys} of {secret}. git said: {detail}"
            if any(marker in lower for marker in _PERMISSION_FAILURES):
                return f"permission denied: {where}: the credentials of {secret} lack access. git said: {detail}"
        return f"git failed to {where}: {detail}"
