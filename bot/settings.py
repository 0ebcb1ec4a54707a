"""Bot settings: config/defaults.yaml overlaid with the platform repo's `.promisebot.yaml`."""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.goduration import parse_seconds

SETTINGS_FILE = ".promisebot.yaml"
DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "defaults.yaml"
_BUILTIN_DEFAULTS: dict[str, Any] = {
    "exclude": [],
    "maxFileBytes": 1048576,
    "runner": {
        "timeoutSeconds": 600,
        "memory": "512Mi",
        "cpus": 1.0,
        "network": "bridge",
        "parallelism": 2,
        "maxOutputBytes": 52428800,
        "maxOutputFiles": 10000,
        "maxLogBytes": 1048576,
    },
    "secretsDir": None,
    "stateBranch": "promisebot/state",
    "reconcileInterval": "10h",
}

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
            ),
            secrets_dir=data.get("secretsDir") or os.environ.get("PROMISEBOT_SECRETS_DIR"),
            state_branch=str(data["stateBranch"]),
            reconcile_interval_seconds=_positive_duration("reconcileInterval", data["reconcileInterval"]),
        )


def _positive_duration(key: str, value: Any) -> float:
    seconds = parse_seconds(str(value))
    if seconds <= 0:
        raise ValueError(f"{key}: must be a positive duration, got {value!r}")
    return seconds


def default_settings_dict() -> dict[str, Any]:
    if DEFAULTS_FILE.is_file():
        loaded = yaml.safe_load(DEFAULTS_FILE.read_text()) or {}
        return _overlay(_BUILTIN_DEFAULTS, loaded)
    return copy.deepcopy(_BUILTIN_DEFAULTS)


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
