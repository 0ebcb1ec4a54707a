"""Bot settings: config/defaults.yaml overlaid with the platform repo's `.promisebot.yaml`."""

from __future__ import annotations

import copy
import functools
import importlib.resources
import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from bot.errors import PromisebotError
from bot.kratix.goduration import parse_seconds

SETTINGS_FILE = ".promisebot.yaml"
POLICY_SECTIONS: tuple[str, ...] = ("commands", "destinations", "apply", "plan")
"""The sections of SETTINGS_FILE that are the bot's ChatOps policy (bot.chatops.policy reads
and checks them), not engine settings."""
DEFAULTS_RESOURCE = ("bot", "defaults.yaml")
"""config/defaults.yaml (bot/defaults.yaml links to it; the wheel carries its content)."""


@functools.cache
def _defaults_text() -> str:
    package, name = DEFAULTS_RESOURCE
    try:
        return importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:  # a broken install, never silently replaced
        raise RuntimeError(f"promisebot's default settings ({package}/{name}) are missing from this "
                           f"installation: reinstall promisebot ({exc})") from None


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]i?|k|)$")
_QUANTITY_UNITS = {
    "": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def parse_quantity(text: str | int | float) -> int:
    """A Kubernetes memory quantity ("512Mi", "1G", 1048576) in bytes. Raises ValueError."""
    if isinstance(text, int | float):
        return int(text)
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ValueError(f"invalid quantity {text!r} (expected e.g. 512Mi, 1Gi)")
    return int(float(m.group(1)) * _QUANTITY_UNITS[m.group(2)])


def _overlay(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _overlay(out[k], v)
        else:
            out[k] = v
    return out


@dataclass(slots=True)
class RunnerSettings:
    timeout_seconds: float
    memory_bytes: int
    cpus: float
    network: str
    parallelism: int
    max_output_bytes: int
    max_output_files: int
    max_log_bytes: int
    # runner.kubernetesApi: a per-run Kubernetes API for the pipeline's containers
    kube_api: str = "auto"  # "auto" (every run; without the image only rbac pipelines fail) | "true" | "false"
    kube_api_image: str = "promisebot/python:latest"


@dataclass(slots=True)
class Settings:
    exclude: list[str]
    max_file_bytes: int
    runner: RunnerSettings
    secrets_dir: str | None
    state_branch: str
    reconcile_interval_seconds: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        r = data["runner"]
        network = str(r["network"])
        if network == "host":
            raise ValueError("runner.network: host networking is not allowed for pipeline containers")
        return cls(
            exclude=[str(x) for x in data.get("exclude") or []],
            max_file_bytes=int(data["maxFileBytes"]),
            runner=RunnerSettings(
                timeout_seconds=float(r["timeoutSeconds"]),
                memory_bytes=parse_quantity(r["memory"]),
                cpus=float(r["cpus"]),
                network=network,
                parallelism=max(1, int(r["parallelism"])),
                max_output_bytes=int(r["maxOutputBytes"]),
                max_output_files=int(r["maxOutputFiles"]),
                max_log_bytes=int(r["maxLogBytes"]),
                **_kube_api(r.get("kubernetesApi")),
            ),
            secrets_dir=data.get("secretsDir") or os.environ.get("PROMISEBOT_SECRETS_DIR"),
            state_branch=_state_branch(data["stateBranch"]),
            reconcile_interval_seconds=_positive_duration("reconcileInterval", data["reconcileInterval"]),
        )


def _kube_api(value: Any) -> dict[str, str]:
    """runner.kubernetesApi: {enabled: true | false | auto, image: IMAGE}."""
    value = value if isinstance(value, dict) else {}
    enabled = value.get("enabled", "auto")
    mode = ("true" if enabled else "false") if isinstance(enabled, bool) else str(enabled).lower()
    if mode not in ("true", "false", "auto"):
        raise SettingError("runner.kubernetesApi.enabled", f"must be true, false or auto, not {enabled!r}")
    image = value.get("image") or "promisebot/python:latest"
    if not isinstance(image, str):
        raise SettingError("runner.kubernetesApi.image", f"must be an image name, not {image!r}")
    return {"kube_api": mode, "kube_api_image": image}


class SettingError(PromisebotError, ValueError):
    """A bad value of one setting; `key` names it (so a caller can point at its line)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


def _state_branch(value: Any) -> str:
    if not isinstance(value, str):
        raise SettingError("stateBranch", f"must be a branch name (a string), not {value!r}")
    if message := state_branch_error(value):
        raise SettingError("stateBranch", message)
    return value


# Branches a platform repo (or a Git state store) is most likely to be reconciled from or
# written to; bookkeeping commits must never land there.
RESERVED_STATE_BRANCHES = ("main", "master")


def ref_format_error(name: str) -> str | None:
    """Why `name` is not a valid Git branch name (`git check-ref-format --branch` rules), or None.

    A branch name must not: be empty, "@" or "HEAD"; start with "-"; start or end with "/"
    or contain "//"; have a component starting with "." or ending with ".lock"; contain
    "..", "@{", a backslash, an ASCII control character, a space, "~", "^", ":", "?", "*"
    or "["; end with ".".
    """
    if not name:
        return "must not be empty"
    if name in ("@", "HEAD"):
        return f"{name!r} is not allowed as a branch name"
    if name.startswith("-"):
        return f"invalid branch name {name!r}: must not start with '-'"
    bad = next((c for c in name if ord(c) < 0o40 or ord(c) == 0o177 or c in " ~^:?*[\\"), None)
    if bad is not None:
        return f"invalid branch name {name!r}: must not contain {bad!r}"
    for sequence in ("..", "@{", "//"):
        if sequence in name:
            return f"invalid branch name {name!r}: must not contain {sequence!r}"
    if name.startswith("/") or name.endswith("/"):
        return f"invalid branch name {name!r}: must not start or end with '/'"
    if name.endswith("."):
        return f"invalid branch name {name!r}: must not end with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return f"invalid branch name {name!r}: no '/'-separated part may start with '.'"
        if part.endswith(".lock"):
            return f"invalid branch name {name!r}: no '/'-separated part may end with '.lock'"
    return None


def state_branch_error(value: str) -> str | None:
    """Why `value` cannot be the bookkeeping branch (`stateBranch`), or None: it must be a valid
    Git branch name and not `main` or `master`."""
    if not isinstance(value, str):
        return "must be a branch name (a string)"
    if message := ref_format_error(value):
        return message
    if _branch_name(value) in RESERVED_STATE_BRANCHES:
        return (f"must not be {value!r}: promisebot commits its bookkeeping there, so it must be a "
                "branch nothing else uses (default promisebot/state)")
    return None


def state_branch_conflict(state_branch: str, branch: str) -> str | None:
    """A reason to refuse when `state_branch` (bookkeeping) is the same branch as `branch` (a branch
    being reconciled, or one a state store writes to); None when they differ.

    Both may be given as `name` or `refs/heads/name`.
    """
    if _branch_name(state_branch) != _branch_name(branch):
        return None
    return (f"stateBranch {state_branch!r} is also the branch {branch!r} being reconciled or written to; "
            "bookkeeping commits would mix with it: set stateBranch in .promisebot.yaml to a branch of its own")


def _branch_name(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def _positive_duration(key: str, value: Any) -> float:
    seconds = parse_seconds(str(value))
    if seconds <= 0:
        raise ValueError(f"{key}: must be a positive duration, got {value!r}")
    return seconds


def default_settings_dict() -> dict[str, Any]:
    """config/defaults.yaml as shipped (a fresh copy each call)."""
    loaded = yaml.safe_load(_defaults_text())
    return copy.deepcopy(loaded) if isinstance(loaded, dict) else {}


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults overlaid with `overrides` (the parsed `.promisebot.yaml`, if any).

    Raises ValueError with the offending key on a bad value.
    """
    data = default_settings_dict()
    if overrides:
        data = _overlay(data, overrides)
    try:
        return Settings.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid settings: {exc}") from exc
