"""Destination (contract §3.5) and State Store (§3.6 Git, §3.7 Bucket) checks.

State stores hold only a `secretRef` {name, namespace}; a credential-looking value inside
the platform repo is an error. Messages never repeat the suspicious value.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from bot.model.objects import (
    BUCKET_STATE_STORE,
    DEFAULT_GIT_BRANCH,
    FILEPATH_MODES,
    GIT_STATE_STORE,
    STATE_STORE_KINDS,
    Destination,
    Ref,
    StateStore,
)
from bot.platform.validate.common import (
    Report,
    bool_at,
    check_keys,
    check_metadata,
    enum_at,
    label_error,
    mapping_at,
    string_at,
    subdomain_error,
)
from bot.platform.yamlload import FieldPath

DESTINATION_SPEC_FIELDS = ("path", "stateStoreRef", "strictMatchLabels", "filepath", "cleanup", "initWorkloads")
GIT_SPEC_FIELDS = ("url", "path", "secretRef", "branch", "authMethod", "gitAuthor")
BUCKET_SPEC_FIELDS = ("bucketName", "endpoint", "path", "insecure", "useDualStack", "secretRef", "authMethod")
GIT_AUTH_METHODS = ("basicAuth", "ssh", "githubApp")
BUCKET_AUTH_METHODS = ("accessKey", "IAM")
STORE_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")

# Keys whose value would be a credential (compared lower-case, without '-' and '_').
CREDENTIAL_KEYS = frozenset({
    "password", "passwd", "token", "accesstoken", "apitoken", "apikey", "secretaccesskey", "accesskeyid",
    "accesskey", "secretkey", "sshprivatekey", "privatekey", "clientsecret", "sessiontoken",
})
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@")
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


ROOT_PATHS = ("", ".", "/", "./")


def destination_path_key(path: str) -> str:
    """A Destination path as compared for uniqueness: "", ".", "/" and "./" are all the root.
    (Not `bot.statestores.base.normalise_path`, which checks a path a store writes to.)"""
    cleaned = posixpath.normpath("/" + path.strip()).strip("/")
    return cleaned or "."


def path_error(path: Any) -> str | None:
    """Why `path` (a Destination's or a State Store's `spec.path`) could write outside the place
    it names, or None when it is safe: a relative "/"-separated path without ".." segments.

    "", ".", "/" and "./" all mean the root (Kratix: 'set Path to "." or "/"'); any
    other absolute path, a ".." segment (even `x/../prod`, which silently aliases `prod`), a
    backslash or a NUL character is refused. The engine may call this before writing.
    """
    if not isinstance(path, str):
        return f"must be a string, not {type(path).__name__}"
    if path in ROOT_PATHS:
        return None
    if "\0" in path:
        return "must not contain a NUL character"
    if "\\" in path:
        return f"must use '/' as separator, not a backslash ({path!r})"
    if path.startswith("/"):
        return (f"must be a relative path, not the absolute path {path!r} (it is written below the "
                "state store's root; use '.' or '/' for the root itself)")
    if ".." in path.split("/"):
        return f"must not contain '..' segments ({path!r} would leave or alias another directory)"
    return None


def filename_error(name: Any) -> str | None:
    """Why `name` cannot be an aggregatedYAML Destination's `spec.filepath.filename`, or None.

    It must be a plain file name inside the Destination's directory: no "/" or backslash (so
    no absolute path and no `../../escape.yaml`), not "." or "..". "" means the default,
    aggregated.yaml (Kratix's webhook default).
    """
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if name == "":
        return None
    if "\0" in name:
        return "must not contain a NUL character"
    if name.startswith("/"):
        why = "an absolute path"
    elif ".." in name.replace("\\", "/").split("/"):
        why = "a path leaving the Destination's directory"
    elif "/" in name or "\\" in name:
        why = "a path with a directory part"
    elif name in (".", ".."):
        why = "a directory"
    else:
        return None
    return f"must be a plain file name, not a path ({name!r} is {why})"


def check_destination(dest: Destination, report: Report, stores: set[tuple[str, str]]) -> None:
    body = dest.body
    check_keys(report, body, (), STORE_FIELDS)
    check_metadata(report, body)
    spec = mapping_at(report, body.get("spec"), ("spec",), required=True)
    if spec is None:
        return
    check_keys(report, spec, ("spec",), DESTINATION_SPEC_FIELDS)
    path = string_at(report, spec.get("path"), ("spec", "path"), required=True)
    if path and (message := path_error(path)):
        report.error(("spec", "path"), message)
    ref = mapping_at(report, spec.get("stateStoreRef"), ("spec", "stateStoreRef"), required=True)
    if ref is not None:
        check_keys(report, ref, ("spec", "stateStoreRef"), ("kind", "name"))
        kind = string_at(report, ref.get("kind"), ("spec", "stateStoreRef", "kind"), required=True)
        enum_at(report, kind, ("spec", "stateStoreRef", "kind"), STATE_STORE_KINDS)
        name = string_at(report, ref.get("name"), ("spec", "stateStoreRef", "name"), required=True)
        if kind in STATE_STORE_KINDS and name and (kind, name) not in stores:
            report.error(("spec", "stateStoreRef", "name"), f"{kind}/{name}: not found")
    bool_at(report, spec.get("strictMatchLabels"), ("spec", "strictMatchLabels"))
    enum_at(report, spec.get("cleanup"), ("spec", "cleanup"), ("none", "all"))
    init = mapping_at(report, spec.get("initWorkloads"), ("spec", "initWorkloads"))
    if init is not None:
        check_keys(report, init, ("spec", "initWorkloads"), ("enabled",))
        bool_at(report, init.get("enabled"), ("spec", "initWorkloads", "enabled"))
    filepath = mapping_at(report, spec.get("filepath"), ("spec", "filepath"))
    if filepath is not None:
        check_keys(report, filepath, ("spec", "filepath"), ("mode", "filename"))
        enum_at(report, filepath.get("mode"), ("spec", "filepath", "mode"), FILEPATH_MODES)
        _check_filename(report, filepath)


def _check_filename(report: Report, filepath: dict[str, Any]) -> None:
    """Kratix types filename as an optional string and only uses it (defaulting it to
    aggregated.yaml) with mode aggregatedYAML; with the other modes it is ignored."""
    name = filepath.get("filename")
    if name is None:
        return
    path: FieldPath = ("spec", "filepath", "filename")
    if not isinstance(name, str):
        report.error(path, f"must be a string, not {type(name).__name__}")
    elif filepath.get("mode") == "aggregatedYAML" and (message := filename_error(name)):
        report.error(path, message)


def check_destination_paths(destinations: list[Destination], reports: dict[str, Report],
                            stores: dict[Ref, StateStore] | None = None) -> None:
    """Destination paths are unique per state store (Kratix destination webhook); "", ".", "/",
    "./x/" and "x" compare equal. With `stores`, two Destinations whose state stores are the same
    place (Git: url and branch; Bucket: endpoint and bucket) must not resolve to the same
    `<store path>/<destination path>` either, or they would overwrite each other's files."""
    seen: dict[tuple[str, str, str], Destination] = {}
    places: dict[tuple[str, ...], Destination] = {}
    for dest in destinations:
        if not dest.path or not dest.state_store_name or path_error(dest.path):
            continue
        key = (dest.state_store_kind, dest.state_store_name, destination_path_key(dest.path))
        first = seen.setdefault(key, dest)
        if first is not dest:
            reports[dest.name].error(("spec", "path"), f"path {dest.path!r} is already used in "
                                     f"{dest.state_store_kind}/{dest.state_store_name} by Destination "
                                     f"{first.name} ({first.source})")
            continue
        store = (stores or {}).get(Ref(dest.state_store_kind, dest.state_store_name))
        place = store_location(store, dest.path) if store is not None else None
        if place is None:
            continue
        first = places.setdefault(place, dest)
        if first is not dest:
            reports[dest.name].error(("spec", "path"), f"path {dest.path!r} resolves to {place[-1] or '.'!r} "
                                     f"in the same {place[0]} as Destination {first.name} ({first.source}), "
                                     f"through {first.state_store_kind}/{first.state_store_name}")


def store_location(store: StateStore, dest_path: str) -> tuple[str, ...] | None:
    """Where a Destination at `dest_path` writes: (what, repository or bucket..., path below its
    root), or None when the store's own fields are unusable."""
    spec = store.spec
    store_path = store.path or ""
    if path_error(store_path) or path_error(dest_path):
        return None
    parts = [p.strip("/") for p in (store_path, dest_path)]
    joined = posixpath.normpath("/".join(p for p in parts if p not in ("", ".")) or ".")
    joined = "" if joined == "." else joined
    if store.kind == GIT_STATE_STORE:
        url, branch = spec.get("url"), spec.get("branch") or DEFAULT_GIT_BRANCH
        if not isinstance(url, str) or not url or not isinstance(branch, str):
            return None
        return ("Git repository branch", url.rstrip("/").removesuffix(".git"), branch, joined)
    endpoint, bucket = spec.get("endpoint"), spec.get("bucketName")
    if not isinstance(endpoint, str) or not isinstance(bucket, str) or not endpoint or not bucket:
        return None
    return ("bucket", endpoint.rstrip("/"), bucket, joined)


def check_state_store(store: StateStore, report: Report) -> None:
    body = store.body
    check_keys(report, body, (), STORE_FIELDS)
    check_metadata(report, body)
    _check_credentials(report, body)
    spec = mapping_at(report, body.get("spec"), ("spec",), required=True)
    if spec is None:
        return
    store_path = string_at(report, spec.get("path"), ("spec", "path"))
    if store_path and (message := path_error(store_path)):
        report.error(("spec", "path"), message)
    secret = mapping_at(report, spec.get("secretRef"), ("spec", "secretRef"))
    if secret is not None:
        check_keys(report, secret, ("spec", "secretRef"), ("name", "namespace"))
        name = string_at(report, secret.get("name"), ("spec", "secretRef", "name"), required=True)
        if name and (message := subdomain_error(name)):
            report.error(("spec", "secretRef", "name"), message)
        namespace = secret.get("namespace")
        if namespace is not None and (message := label_error(namespace)):
            report.error(("spec", "secretRef", "namespace"), message)
    if store.kind == GIT_STATE_STORE:
        _check_git(report, spec)
    elif store.kind == BUCKET_STATE_STORE:
        _check_bucket(report, spec)


def _is_credential_key(key: str) -> bool:
    return key.replace("-", "").replace("_", "").lower() in CREDENTIAL_KEYS


def _check_fields(report: Report, spec: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Unknown spec fields, leaving credential-looking ones to the (clearer) credential error."""
    check_keys(report, {k: v for k, v in spec.items() if not _is_credential_key(k)}, ("spec",), allowed)


def _check_git(report: Report, spec: dict[str, Any]) -> None:
    _check_fields(report, spec, GIT_SPEC_FIELDS)
    string_at(report, spec.get("url"), ("spec", "url"), required=True)
    string_at(report, spec.get("branch"), ("spec", "branch"))
    enum_at(report, spec.get("authMethod"), ("spec", "authMethod"), GIT_AUTH_METHODS)
    if spec.get("authMethod") in ("ssh", "githubApp") and not isinstance(spec.get("secretRef"), dict):
        report.error(("spec", "secretRef"), f"required with authMethod {spec['authMethod']}")
    author = mapping_at(report, spec.get("gitAuthor"), ("spec", "gitAuthor"))
    if author is not None:
        check_keys(report, author, ("spec", "gitAuthor"), ("name", "email"))
        for key in ("name", "email"):
            if author.get(key) is not None and not isinstance(author[key], str):
                report.error(("spec", "gitAuthor", key), "must be a string")


def _check_bucket(report: Report, spec: dict[str, Any]) -> None:
    _check_fields(report, spec, BUCKET_SPEC_FIELDS)
    string_at(report, spec.get("bucketName"), ("spec", "bucketName"), required=True)
    string_at(report, spec.get("endpoint"), ("spec", "endpoint"), required=True)
    bool_at(report, spec.get("insecure"), ("spec", "insecure"))
    bool_at(report, spec.get("useDualStack"), ("spec", "useDualStack"))
    enum_at(report, spec.get("authMethod"), ("spec", "authMethod"), BUCKET_AUTH_METHODS)
    if spec.get("authMethod", "accessKey") == "accessKey" and not isinstance(spec.get("secretRef"), dict):
        report.error(("spec", "secretRef"), "required with authMethod accessKey (a Secret holding "
                     "accessKeyID and secretAccessKey)")


def _check_credentials(report: Report, body: dict[str, Any]) -> None:
    """Credentials belong in a Secret named by secretRef, never in the platform repo."""
    for path, key, value in _walk(body, ()):
        if key is not None and _is_credential_key(key) and value not in (None, ""):
            report.error(path, "looks like a credential; credentials must not be stored in the platform "
                         "repo: put them in a Secret and reference it with spec.secretRef (value not shown)")
        elif isinstance(value, str) and _URL_WITH_PASSWORD.search(value):
            report.error(path, "URL embeds a user:password; use spec.secretRef instead (value not shown)")
        elif isinstance(value, str) and _PEM_PRIVATE_KEY.search(value):
            report.error(path, "contains a PEM private key; use spec.secretRef instead (value not shown)")


def _walk(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, str | None, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key), key, child
            if isinstance(child, dict | list):
                yield from _walk(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield (*path, i), None, child
            if isinstance(child, dict | list):
                yield from _walk(child, (*path, i))
