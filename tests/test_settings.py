"""Settings: defaults, overlay by .promisebot.yaml, and the duration/quantity parsers."""

import pytest
import yaml
from paths import ROOT

from bot import settings as s


def test_defaults_are_the_documented_file():
    # config/defaults.yaml is what promisebot reads (the wheel carries it: tests/test_wheel.py).
    assert s.default_settings_dict() == yaml.safe_load((ROOT / "config" / "defaults.yaml").read_text())


def test_overrides_overlay_nested_keys_only():
    got = s.load_settings({"runner": {"timeoutSeconds": 30}, "exclude": ["drafts/**"]})
    assert got.runner.timeout_seconds == 30
    assert got.runner.memory_bytes == 512 * 2**20  # untouched sibling keeps its default
    assert got.exclude == ["drafts/**"]
    assert got.reconcile_interval_seconds == 10 * 3600


def test_host_network_is_refused():
    with pytest.raises(ValueError, match="host networking"):
        s.load_settings({"runner": {"network": "host"}})


@pytest.mark.parametrize("interval", ["0s", "-1h", "10", "ten minutes"])
def test_reconcile_interval_must_be_a_positive_go_duration(interval):
    with pytest.raises(ValueError):
        s.load_settings({"reconcileInterval": interval})


@pytest.mark.parametrize(
    ("text", "size"), [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("100k", 10**5), (4096, 4096)]
)
def test_quantities(text, size):
    assert s.parse_quantity(text) == size


def test_bad_quantity():
    with pytest.raises(ValueError, match="quantity"):
        s.parse_quantity("lots")


def test_default_file_cap_is_what_the_kubernetes_api_server_accepts():
    assert s.load_settings().max_file_bytes == 3 * 2**20
    assert s.load_settings({"maxFileBytes": 1000}).max_file_bytes == 1000


@pytest.mark.parametrize("name", ["promisebot/state", "state", "a/b/c", "feature-1.2", "x@y", "release_2024"])
def test_valid_branch_names(name):
    assert s.ref_format_error(name) is None
    assert s.state_branch_error(name) is None


@pytest.mark.parametrize(
    "name",
    ["", "@", "HEAD", "-x", "a..b", "a@{b", "a//b", "/a", "a/", "a.", ".a", "a/.b", "a.lock", "a/b.lock/c",
     "a b", "a~b", "a^b", "a:b", "a?b", "a*b", "a[b", "a\\b", "a\tb", "a\x7fb"],
)
def test_invalid_branch_names_follow_git_check_ref_format(name):
    assert s.ref_format_error(name)
    assert s.state_branch_error(name)


@pytest.mark.parametrize("name", ["main", "master", "refs/heads/main"])
def test_state_branch_must_not_be_main_or_master(name):
    assert "must not be" in s.state_branch_error(name)
    with pytest.raises(ValueError, match="stateBranch"):
        s.load_settings({"stateBranch": name})


@pytest.mark.parametrize("value", ["", "bad..name", 5, None])
def test_a_bad_state_branch_is_refused_by_load_settings(value):
    with pytest.raises(ValueError, match="stateBranch"):
        s.load_settings({"stateBranch": value})


def test_state_branch_conflict():
    assert s.state_branch_conflict("promisebot/state", "main") is None
    assert s.state_branch_conflict("promisebot/state", "promisebot/state")
    assert s.state_branch_conflict("refs/heads/deploy", "deploy")
    assert s.state_branch_conflict("deploy", "deploy2") is None


def test_a_bad_state_branch_names_its_key():
    with pytest.raises(s.SettingError) as info:
        s.load_settings({"stateBranch": "master"})
    assert info.value.key == "stateBranch" and str(info.value).startswith("stateBranch: must not be 'master'")
