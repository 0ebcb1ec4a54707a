"""GitStateStore writer (contract §3.1, §3.6): one cached clone per store, one commit and one push
per change set, built in time proportional to the changed files.

How a write works, without a work tree or an index:
- the cache is a bare repository under `cache_dir` keyed by url+branch; before each write
  `git ls-remote` reads the remote branch and `git fetch` runs only if that commit is unknown;
- one `git fast-import` run writes the new blobs and the trees along the changed paths on top
  of the remote head; untouched subtrees are reused by id, so files already in the store cost
  nothing, and a delete prefix (`D <dir>` before the puts) empties its directory in one step;
- `git diff-tree` between the old and new root trees gives the added/modified/removed files;
  an unchanged root tree means no commit;
- one commit (author/committer from `gitAuthor`), one `git push <commit>:refs/heads/<branch>`.
  A rejected push (the branch moved) re-reads the remote and re-applies the same change set on
  top of it, with jittered exponential backoff, a bounded number of times. A remote rewritten
  under the bot needs nothing special: every write starts from the remote's current branch.

Credentials never go into URLs or `.git/config`: basic auth is answered by a GIT_ASKPASS script
reading environment variables of the git process; SSH keys go to 0600 files in a private
temporary directory named by GIT_SSH_COMMAND, removed after the session. ssh reads no user or
system config and trusts only the secret's `knownHosts` (StrictHostKeyChecking); errors name the
failing secret key and never carry key material (the key and each of its lines are redacted).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import re
import shlex
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from git import Actor, Commit, Repo

from bot.model import FileChanges, SecretRef, StateStore
from bot.secrets import Secret, SecretNotFoundError, SecretResolver, redact
from bot.statestores.base import (
    Change,
    FileDiff,
    NormalisedChanges,
    ReadyResult,
    StateStoreError,
    WriteResult,
    ancestors,
    check_trailers,
    commit_message,
    normalise_path,
)

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
DEFAULT_AUTHOR_NAME = "promisebot"
BASIC_AUTH, SSH_AUTH = "basicAuth", "ssh"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
BUILD_REF = "refs/promisebot/build"  # scratch ref fast-import writes to
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
_RETRYABLE_REMOTE_REJECTIONS = ("lock", "failed to update ref", "incorrect old value")
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


class GitStateStoreWriter:
    """A GitStateStore (contract §3.6). See the module docstring for how writes work."""

    def __init__(
        self,
        store: StateStore,
        *,
        platform_root: Path,
        secrets: SecretResolver,
        cache_dir: Path,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
    ) -> None:
        spec = store.spec
        self.store = store
        self.remote = parse_remote(str(spec.get("url") or ""), platform_root)
        self.branch = str(spec.get("branch") or DEFAULT_BRANCH)
        if self.branch.startswith(("-", "refs/")) or not re.match(r"^[A-Za-z0-9._/-]+$", self.branch):
            raise ValueError(f"invalid GitStateStore branch {self.branch!r}")
        self.auth_method = str(spec.get("authMethod") or BASIC_AUTH)
        if self.auth_method not in (BASIC_AUTH, SSH_AUTH):
            raise ValueError(
                f"GitStateStore authMethod {self.auth_method!r} is not supported (use basicAuth or ssh)"
            )
        if self.remote.transport == "ssh" and self.auth_method != SSH_AUTH:
            raise ValueError("GitStateStore with an ssh url needs authMethod: ssh")
        if self.remote.transport == "http" and self.auth_method == SSH_AUTH:
            raise ValueError("GitStateStore authMethod ssh needs an ssh url (ssh://... or user@host:path)")
        author = spec.get("gitAuthor") or {}
        self.author = Actor(str(author.get("name") or DEFAULT_AUTHOR_NAME), str(author.get("email") or ""))
        self._secrets = secrets
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_seconds
        self._tracking = f"refs/remotes/origin/{self.branch}"
        key = hashlib.sha256(f"{self.remote.url}\0{self.branch}".encode()).hexdigest()[:24]
        self._root = Path(cache_dir) / "git"
        self._path = self._root / key
        self._synced: str | None = None
        self._has_synced = False
        self._secret_values: list[Secret] = []

    def __repr__(self) -> str:
        return f"GitStateStoreWriter({self.store.name!r}, url={self.remote.url!r}, branch={self.branch!r})"

    # -- public interface ---------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        path = normalise_path(path)
        with self._session() as (repo, env):
            head = self._ensure_synced(repo, env)
            if head is None:
                return None
            try:
                obj = repo.commit(head).tree.join(path)
            except KeyError:
                return None
            return obj.data_stream.read() if obj.type == "blob" else None

    def list(self, prefix: str) -> list[str]:
        prefix = normalise_path(prefix, directory=True)
        with self._session() as (repo, env):
            head = self._ensure_synced(repo, env)
            if head is None:
                return []
            args = ["ls-tree", "-r", "-z", "--name-only", head]
            out = self._run(repo, [*args, "--", prefix + "/"] if prefix else args, env={}, what="list")
            return sorted(p for p in out.split("\0") if p)

    def apply(self, changes: FileChanges, message: str, trailers: dict[str, str]) -> WriteResult:
        """One commit and one push for the whole change set (contract §3.6, batched)."""
        norm = NormalisedChanges.of(changes)
        check_trailers(trailers)
        with self._session() as (repo, env):
            commands = fast_import_commands(norm)
            for attempt in range(1, self._max_attempts + 1):
                head = self._sync(repo, env)
                old_tree, new_tree, diff = self._build(repo, head, commands)
                if new_tree == old_tree:
                    log.info("%s: nothing to commit", self)
                    return WriteResult(None)
                added, modified, removed = _split(diff)
                text = commit_message(message, trailers, len(added), len(modified), len(removed))
                parents = [repo.commit(head)] if head else []
                commit = Commit.create_from_tree(
                    repo, new_tree, text, parent_commits=parents, author=self.author, committer=self.author
                )
                if self._push(repo, env, commit.hexsha):
                    self._run(repo, ["update-ref", self._tracking, commit.hexsha], env={}, what="record push")
                    self._exec(repo, ["gc", "--auto", "--quiet"], {}, network=False)
                    self._synced, self._has_synced = commit.hexsha, True
                    log.info("%s: pushed %s (%s)", self, commit.hexsha[:12], text.splitlines()[0])
                    return WriteResult(commit.hexsha, added, modified, removed)
                if attempt < self._max_attempts:
                    delay = self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                    log.warning("%s: push rejected (attempt %d), retrying in %.2fs", self, attempt, delay)
                    time.sleep(delay)
        raise StateStoreError(
            f"{self}: push rejected {self._max_attempts} times because the branch kept moving; "
            "the change set was not written"
        )

    def diff(self, changes: FileChanges) -> list[FileDiff]:
        norm = NormalisedChanges.of(changes)
        with self._session() as (repo, env):
            head = self._sync(repo, env)
            _old, _new, diff = self._build(repo, head, fast_import_commands(norm))

            def blob(sha: str | None) -> bytes | None:
                return repo.odb.stream(bytes.fromhex(sha)).read() if sha else None

            return [FileDiff(c.path, c.action, blob(c.old), blob(c.new)) for c in diff]

    def check_ready(self) -> ReadyResult:
        """Fetch works and a dry-run push is accepted (contract §3.6 readiness)."""
        try:
            with self._session() as (repo, env):
                head = self._sync(repo, env)
                try:
                    source = head or Commit.create_from_tree(
                        repo, EMPTY_TREE, "promisebot permission check", parent_commits=[],
                        author=self.author, committer=self.author,
                    ).hexsha
                    self._run(
                        repo,
                        ["push", "--dry-run", "--porcelain", "origin", f"{source}:refs/heads/{self.branch}"],
                        env=env, what="check write permission on", network=True,
                    )
                except StateStoreError as exc:
                    return ReadyResult.permission_failed(str(exc))
        except (StateStoreError, ValueError, OSError) as exc:
            return ReadyResult.init_failed(str(exc))
        return ReadyResult.ok()

    # -- the cached repository ----------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[tuple[Repo, dict[str, str]]]:
        """The cached bare repository, locked for this process and others, and the git env."""
        self._root.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            repo = self._open_repo()
            try:
                with self._network_env() as env:
                    yield repo, env
            finally:
                repo.close()

    def _open_repo(self) -> Repo:
        if (self._path / "HEAD").is_file():
            return Repo(self._path)
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=self._root))
        repo = Repo.init(tmp, bare=True)
        with repo.config_writer() as cfg:
            cfg.set_value('remote "origin"', "url", self.remote.url)
            cfg.set_value('remote "origin"', "fetch", f"+refs/heads/{self.branch}:{self._tracking}")
            cfg.set_value("gc", "autoDetach", "false")
        repo.close()
        tmp.rename(self._path)
        return Repo(self._path)

    @contextmanager
    def _network_env(self) -> Iterator[dict[str, str]]:
        """Environment for git commands that talk to the remote; secrets resolved here."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_SSH_VARIANT": "ssh"}
        ref = self.store.secret_ref
        if self.remote.transport == "http" and ref is not None:
            self._secret_values = [self._secret(ref, "username"), self._secret(ref, "password")]
            askpass = self._root / "askpass.sh"
            if not askpass.is_file():
                tmp = askpass.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(_ASKPASS_SCRIPT)
                tmp.chmod(stat.S_IRWXU)
                tmp.replace(askpass)
            env |= {
                "GIT_ASKPASS": str(askpass),
                "PROMISEBOT_GIT_USERNAME": self._secret_values[0].reveal(),
                "PROMISEBOT_GIT_PASSWORD": self._secret_values[1].reveal(),
            }
            yield env
        elif self.remote.transport == "ssh":
            if ref is None:
                raise ValueError(f"GitStateStore {self.store.name} uses authMethod ssh but has no secretRef")
            key, known = self._secret(ref, "sshPrivateKey"), self._secret(ref, "knownHosts")
            lines = (line.strip() for line in key.reveal().splitlines())
            self._secret_values = [key, *(Secret(line) for line in lines if len(line) >= 16)]
            with tempfile.TemporaryDirectory(prefix="promisebot-ssh-") as tmp:
                key_file, hosts_file = Path(tmp) / "id", Path(tmp) / "known_hosts"
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
            self._secret_values = []
            yield env

    def _secret(self, ref: SecretRef, key: str) -> Secret:
        try:
            return self._secrets.secret(ref, key)
        except SecretNotFoundError as exc:
            raise StateStoreError(f"GitStateStore {self.store.name}: {exc}") from None

    def _exec(
        self, repo: Repo, args: list[str], env: dict[str, str], network: bool, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        """`git <args>` in the cache: (status, stdout, stderr). Network commands use no helper."""
        cmd = ["git", "--literal-pathspecs"] + (["-c", "credential.helper="] if network else []) + args
        with tempfile.TemporaryFile() as data:
            if stdin is not None:
                data.write(stdin)
                data.seek(0)
            return repo.git.execute(
                cmd, env=env, istream=data if stdin is not None else None, with_extended_output=True,
                with_exceptions=False, strip_newline_in_stdout=False,
            )

    def _run(
        self, repo: Repo, args: list[str], *, env: dict[str, str], what: str, network: bool = False,
        stdin: bytes | None = None,
    ) -> str:
        """`git <args>`'s stdout; StateStoreError (secrets redacted) if it fails."""
        status, out, err = self._exec(repo, args, env, network, stdin)
        if status != 0:
            raise StateStoreError(self._describe_failure(what, err))
        return out

    def _describe_failure(self, what: str, stderr: str) -> str:
        detail = " ".join(line.strip() for line in stderr.splitlines() if line.strip())[-600:]
        detail = redact(detail, self._secret_values)
        where = f"{what} {self.remote.url} (branch {self.branch})"
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

    def _ensure_synced(self, repo: Repo, env: dict[str, str]) -> str | None:
        """The remote head as first seen by this writer (read/list see one snapshot)."""
        if not self._has_synced:
            self._sync(repo, env)
        return self._synced

    def _sync(self, repo: Repo, env: dict[str, str]) -> str | None:
        """Bring the remote branch into the cache; its commit id, or None if it does not exist."""
        out = self._run(
            repo, ["ls-remote", "origin", f"refs/heads/{self.branch}"], env=env, what="read", network=True
        )
        head = out.split()[0] if out.strip() else None
        if head is None:
            self._exec(repo, ["update-ref", "-d", self._tracking], {}, network=False)
        elif self._has_commit(repo, head):
            self._run(repo, ["update-ref", self._tracking, head], env={}, what="reset to")
        else:
            self._run(
                repo, ["fetch", "--no-tags", "origin", f"+refs/heads/{self.branch}:{self._tracking}"],
                env=env, what="fetch", network=True,
            )
            head = self._run(repo, ["rev-parse", self._tracking], env={}, what="fetch").strip()
        self._synced, self._has_synced = head, True
        return head

    def _has_commit(self, repo: Repo, sha: str) -> bool:
        return self._exec(repo, ["cat-file", "-e", f"{sha}^{{commit}}"], {}, network=False)[0] == 0

    def _push(self, repo: Repo, env: dict[str, str], commit: str) -> bool:
        """Push `commit` to the branch (never forced). False if rejected because the branch moved."""
        status, out, err = self._exec(
            repo, ["push", "--porcelain", "origin", f"{commit}:refs/heads/{self.branch}"], env, network=True
        )
        for line in out.splitlines():
            if line.startswith("!\t"):
                outcome = line.split("\t", 2)[-1].lower()
                if "[rejected]" in outcome or (
                    "[remote rejected]" in outcome and any(s in outcome for s in _RETRYABLE_REMOTE_REJECTIONS)
                ):
                    return False
                raise StateStoreError(f"push to {self.remote.url} (branch {self.branch}) refused: {outcome}")
        if status != 0:
            raise StateStoreError(self._describe_failure("push to", err))
        return True

    # -- building the new tree ----------------------------------------------------------

    def _build(self, repo: Repo, head: str | None, commands: bytes) -> tuple[str, str, list[Change[str]]]:
        """(old root tree, new root tree, files changed) for the change set applied on `head`.

        `git fast-import` loads only the trees along the changed paths, so the cost follows
        the change set, not the files already in the store.
        """
        start = f"from {head}\n" if head else "deleteall\n"
        stream = f"commit {BUILD_REF}\ncommitter promisebot <> 0 +0000\ndata 0\n{start}".encode()
        self._run(repo, ["fast-import", "--quiet", "--force", "--done"], env={}, what="build a commit for",
                  stdin=stream + commands + b"done\n")
        revs = [f"{BUILD_REF}^{{tree}}"] + ([f"{head}^{{tree}}"] if head else [])
        new_tree, old_tree = (self._run(repo, ["rev-parse", *revs], env={}, what="build").split() + [EMPTY_TREE])[:2]
        if new_tree == old_tree:
            return old_tree, new_tree, []
        out = self._run(
            repo, ["diff-tree", "-r", "-z", "--no-renames", old_tree, new_tree], env={}, what="compare trees of"
        )
        return old_tree, new_tree, _parse_raw_diff(out)


def fast_import_commands(changes: NormalisedChanges) -> bytes:
    """The change set as `git fast-import` file commands: delete prefixes, deletes, then puts,
    so a prefix ends up holding exactly the files put under it. Raises ValueError."""
    for path in changes.puts:
        if any(part.lower() == ".git" for part in path.split("/")):
            raise ValueError(f"state store path {path!r}: '.git' is not allowed in a Git state store")
        for parent in ancestors(path):
            if parent in changes.puts:
                raise ValueError(f"state store path {parent!r} is written both as a file and as a directory")
    out: list[bytes] = []
    for prefix in sorted(changes.delete_prefixes):
        out.append(b"deleteall\n" if prefix == "" else b"D " + _quote(prefix) + b"\n")
    out += [b"D " + _quote(path) + b"\n" for path in sorted(changes.deletes)]
    for path, content in sorted(changes.puts.items()):
        out += [b"M 100644 inline ", _quote(path), b"\ndata %d\n" % len(content), content, b"\n"]
    return b"".join(out)


def _quote(path: str) -> bytes:
    """A path as a C-style quoted fast-import string."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return b'"' + escaped.encode() + b'"'


def _parse_raw_diff(out: str) -> list[Change[str]]:
    """`git diff-tree -r -z` raw output -> changes (type changes count as modifications)."""
    fields = out.split("\0")
    changes: list[Change[str]] = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(":"):
            continue
        _old_mode, _new_mode, old, new, status = meta[1:].split()
        action: Literal["add", "modify", "remove"] = (
            "add" if status[0] == "A" else "remove" if status[0] == "D" else "modify"
        )
        changes.append(
            Change(path, action, None if action == "add" else old, None if action == "remove" else new)
        )
    return changes


def _split(diff: list[Change[str]]) -> tuple[list[str], list[str], list[str]]:
    by = {a: sorted(c.path for c in diff if c.action == a) for a in ("add", "modify", "remove")}
    return by["add"], by["modify"], by["remove"]
