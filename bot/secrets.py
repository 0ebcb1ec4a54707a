"""Resolve a state store's `secretRef` (contract §3.6, §3.7) without Kubernetes.

A secret `{name, namespace}` with keys (e.g. `username`, `password`) is looked up, per key:

1. in the secrets directory, as the file `<secrets_dir>/<namespace>/<name>/<key>` — the shape
   Kubernetes gives a mounted Secret, so an existing Secret can be mounted as-is;
2. otherwise in the environment variable `PROMISEBOT_SECRET_<NAMESPACE>_<NAME>_<KEY>`: namespace,
   name and key upper-cased, every character that is not an ASCII letter or digit replaced by `_`
   (`default`/`git-creds`/`sshPrivateKey` -> `PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_SSHPRIVATEKEY`).

A file holding a single line keeps its value without the final newline (so `echo pw > file`
works); multi-line values (SSH keys, known_hosts) are returned exactly as stored.

Values never appear in errors or `repr`s: wrap them in `Secret`, and pass logs through `redact`
(the one redaction rule, `bot/redact.py`). Every value resolved here is also registered with
`bot.redact.register_secret`, so any later `redact`, of any text, replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.errors import PromisebotError
from bot.model.objects import SecretRef
from bot.redact import REDACTED, register_secret
from bot.redact import redact as _redact

ENV_PREFIX = "PROMISEBOT_SECRET_"
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
_SAFE_PART = re.compile(r"^[A-Za-z0-9._-]+$")


class SecretNotFoundError(PromisebotError, LookupError):
    """A secret key is in neither the secrets directory nor the environment."""


class Secret:
    """A secret value that never shows itself in `repr`, `str` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def env_var_name(ref: SecretRef, key: str) -> str:
    """The environment variable holding `key` of the secret `ref` (see the module docstring)."""
    parts = (ref.namespace, ref.name, key)
    return ENV_PREFIX + "_".join(_NON_ALNUM.sub("_", p).upper() for p in parts)


def redact(text: str, values: Iterable[str | Secret]) -> str:
    """`text` with each (non-empty) secret value in `values`, every value resolved so far and
    every recognisable credential replaced by `***`: `bot.redact.redact`."""
    return _redact(text, values)


def _check_part(what: str, value: str) -> None:
    if not _SAFE_PART.match(value) or value in (".", ".."):
        raise ValueError(
            f"invalid secret {what} {value!r}: use letters, digits, '.', '-' or '_' (no '/', not '.' or '..')"
        )


class SecretResolver:
    """Looks secret keys up in `secrets_dir` (if given) and then in `environ`."""

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str]) -> None:
        self._dir = Path(secrets_dir) if secrets_dir is not None else None
        self._environ = environ

    def __repr__(self) -> str:
        return f"SecretResolver(secrets_dir={str(self._dir) if self._dir else None!r})"

    def file_path(self, ref: SecretRef, key: str) -> Path | None:
        """Where `key` of `ref` would be read from in the secrets directory (None without one)."""
        if self._dir is None:
            return None
        return self._dir / ref.namespace / ref.name / key

    def secret(self, ref: SecretRef, key: str) -> Secret:
        """The value of `key` in secret `ref`, wrapped. Raises SecretNotFoundError, ValueError."""
        _check_part("namespace", ref.namespace)
        _check_part("name", ref.name)
        _check_part("key", key)
        path = self.file_path(ref, key)
        if path is not None and path.is_file():
            value = path.read_text()
            if value.endswith("\n") and value.count("\n") == 1:
                value = value[:-1]
            register_secret(value)
            return Secret(value)
        var = env_var_name(ref, key)
        if var in self._environ:
            register_secret(self._environ[var])
            return Secret(self._environ[var])
        where = f"the file {path} or " if path is not None else ""
        raise SecretNotFoundError(
            f"secret {ref.namespace}/{ref.name} has no key {key!r}: create {where}"
            f"the environment variable {var}"
        )

    def get(self, ref: SecretRef, key: str) -> str:
        """The plain value of `key` in secret `ref`. Raises SecretNotFoundError, ValueError."""
        return self.secret(ref, key).reveal()
