"""Destination (contract §3.5) and State Store (§3.6 Git, §3.7 Bucket) checks.

State stores hold only a `secretRef` {name, namespace}; a credential-looking value inside
the platform repo is an error. Messages never repeat the suspicious value.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from bot.model import (
    BUCKET_STATE_STORE,
    FILEPATH_MODES,
    GIT_STATE_STORE,
    STATE_STORE_KINDS,
    Destination,
    StateStore,
)
from bot.validate_common import (
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
from bot.yamlload import FieldPath

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


def normalise_path(path: str) -> str:
    """A Destination path as compared for uniqueness: "", ".", "/" and "./" are all the root."""
    cleaned = posixpath.normpath("/" + path.strip()).strip("/")
    return cleaned or "."


def check_destination(dest: Destination, report: Report, stores: set[tuple[str, str]]) -> None:
    body = dest.body
    check_keys(report, body, (), STORE_FIELDS)
    check_metadata(report, body)
    spec = mapping_at(report, body.get("spec"), ("spec",), required=True)
    if spec is None:
        return
    check_keys(report, spec, ("spec",), DESTINATION_SPEC_FIELDS)
    path = string_at(report, spec.get("path"), ("spec", "path"), required=True)
    if path and ".." in path.replace("\\", "/").split("/"):
        report.error(("spec", "path"), "must not contain '..'")
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
    if "filename" not in filepath:
        return
    path: FieldPath = ("spec", "filepath", "filename")
    if filepath.get("mode") != "aggregatedYAML":
        report.error(path, "filename is only allowed with mode aggregatedYAML")
        return
    name = string_at(report, filepath["filename"], path, required=True)
    if name and ("/" in name or "\\" in name or name in (".", "..")):
        report.error(path, f"must be a plain file name, not a path ({name!r})")


def check_destination_paths(destinations: list[Destination], reports: dict[str, Report]) -> None:
    """Destination paths are unique per state store (Kratix destination webhook)."""
    seen: dict[tuple[str, str, str], Destination] = {}
    for dest in destinations:
        if not dest.path or not dest.state_store_name:
            continue
        key = (dest.state_store_kind, dest.state_store_name, normalise_path(dest.path))
        first = seen.setdefault(key, dest)
        if first is not dest:
            reports[dest.name].error(("spec", "path"), f"path {dest.path!r} is already used in "
                                     f"{dest.state_store_kind}/{dest.state_store_name} by Destination "
                                     f"{first.name} ({first.source})")


def check_state_store(store: StateStore, report: Report) -> None:
    body = store.body
    check_keys(report, body, (), STORE_FIELDS)
    check_metadata(report, body)
    _check_credentials(report, body)
    spec = mapping_at(report, body.get("spec"), ("spec",), required=True)
    if spec is None:
        return
    string_at(report, spec.get("path"), ("spec", "path"))
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
