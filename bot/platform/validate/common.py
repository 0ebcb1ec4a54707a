"""Shared pieces of validation: a per-object problem reporter and Kubernetes name/label rules.

Name and label rules are those of k8s.io/apimachinery/pkg/util/validation (IsDNS1123Subdomain,
IsDNS1123Label, IsQualifiedName, IsValidLabelValue).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.model.objects import Problem, Source
from bot.platform.yamlload import FieldPath, YamlDoc, format_path

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Fields of Kubernetes ObjectMeta (anything else under metadata is unknown).
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})


@dataclass(slots=True)
class Report:
    """Collects the problems of one object, each placed at the line of its field."""

    doc: YamlDoc | None
    source: Source
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: FieldPath) -> Source:
        return self.doc.source_at(path) if self.doc is not None else self.source

    def error(self, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.at(path), format_path(path), message))

    def warn(self, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.at(path), format_path(path), message, severity="warning"))


def subdomain_error(value: Any, max_length: int = 253) -> str:
    """Why `value` is not a DNS-1123 subdomain of at most max_length characters ("" if it is)."""
    return _name_error(value, max_length, DNS1123_SUBDOMAIN, "subdomain", ", '-' or '.'")


def label_error(value: Any) -> str:
    """Why `value` is not a DNS-1123 label ("" if it is)."""
    return _name_error(value, 63, DNS1123_LABEL, "label", " or '-'")


def _name_error(value: Any, max_length: int, pattern: re.Pattern[str], kind: str, allowed: str) -> str:
    if not isinstance(value, str) or not value:
        return "required" if value in (None, "") else "must be a string"
    if len(value) > max_length:
        return f"must be no more than {max_length} characters (is {len(value)})"
    if not pattern.match(value):
        return (f"invalid name {value!r}: a lowercase RFC 1123 {kind} must consist of lower case "
                f"alphanumeric characters{allowed}, and must start and end "
                "with an alphanumeric character")
    return ""


def label_key_error(key: str) -> str:
    """Why `key` is not a valid label/annotation key: [prefix/]name ("" if it is)."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return f"invalid key {key!r}: prefix part must be non-empty"
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return f"invalid key {key!r}: prefix must be a DNS-1123 subdomain of at most 253 characters"
    if not name or len(name) > 63 or not QUALIFIED_NAME.match(name):
        return (f"invalid key {key!r}: name part must be at most 63 characters of alphanumerics, "
                "'-', '_' or '.', starting and ending with an alphanumeric character")
    return ""


def label_value_error(value: Any) -> str:
    if not isinstance(value, str):
        return f"label values must be strings (quote {value!r})"
    if len(value) > 63 or not LABEL_VALUE.match(value):
        return (f"invalid label value {value!r}: at most 63 characters of alphanumerics, '-', '_' or "
                "'.', starting and ending with an alphanumeric character")
    return ""


def check_labels(report: Report, labels: Any, path: FieldPath) -> None:
    """A map of valid label keys to valid label values (metadata.labels, matchLabels)."""
    if labels is None:
        return
    if not isinstance(labels, dict):
        report.error(path, "must be a map of label keys to values")
        return
    for key, value in labels.items():
        if message := label_key_error(key):
            report.error((*path, key), message)
        elif message := label_value_error(value):
            report.error((*path, key), message)


def check_metadata(report: Report, body: dict[str, Any], *, name_max: int = 253) -> None:
    """metadata is a mapping with a valid name, labels and annotations; no unknown fields."""
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        report.error(("metadata",), "required" if meta is None else "must be a mapping")
        return
    if message := subdomain_error(meta.get("name"), name_max):
        report.error(("metadata", "name"), message)
    check_keys(report, meta, ("metadata",), OBJECT_META_FIELDS)
    check_labels(report, meta.get("labels"), ("metadata", "labels"))
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        report.error(("metadata", "annotations"), "must be a map of keys to string values")
    elif isinstance(annotations, dict):
        for key, value in annotations.items():
            if message := label_key_error(key):
                report.error(("metadata", "annotations", key), message)
            elif not isinstance(value, str):
                report.error(("metadata", "annotations", key), f"annotation values must be strings (quote {value!r})")


def check_keys(report: Report, mapping: dict[str, Any], path: FieldPath, allowed: Iterable[str],
               *, warning: bool = False) -> None:
    """Every key of `mapping` is one of `allowed`; others are unknown fields."""
    allowed = set(allowed)
    for key in mapping:
        if key not in allowed:
            message = f"unknown field (allowed: {', '.join(sorted(allowed))})"
            (report.warn if warning else report.error)((*path, key), message)


def mapping_at(report: Report, value: Any, path: FieldPath, *, required: bool = False) -> dict[str, Any] | None:
    """`value` if it is a mapping; reports it as required or mistyped otherwise."""
    if isinstance(value, dict):
        return value
    if value is None:
        if required:
            report.error(path, "required")
    else:
        report.error(path, "must be a mapping")
    return None


def list_at(report: Report, value: Any, path: FieldPath) -> list[Any]:
    """`value` if it is a list (absent: []); reports a mistyped one."""
    if value is None:
        return []
    if not isinstance(value, list):
        report.error(path, "must be a list")
        return []
    return value


def string_at(report: Report, value: Any, path: FieldPath, *, required: bool = False) -> str | None:
    """`value` if it is a non-empty string; reports it as required or mistyped otherwise."""
    if isinstance(value, str) and value:
        return value
    if value is None or value == "":
        if required:
            report.error(path, "required")
    else:
        report.error(path, f"must be a string, not {type(value).__name__}")
    return None


def enum_at(report: Report, value: Any, path: FieldPath, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value is not None and value not in allowed:
        report.error(path, f"unsupported value {value!r}: must be one of {', '.join(allowed)}")


def bool_at(report: Report, value: Any, path: FieldPath) -> None:
    if value is not None and not isinstance(value, bool):
        what = f"the string {value!r}" if isinstance(value, str) else repr(value)
        report.error(path, f"must be a boolean (true or false), not {what}")
