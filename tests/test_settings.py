"""Settings: defaults, overlay by .promisebot.yaml, and the duration/quantity parsers."""

import pytest
import yaml

from bot import settings as s


def test_documented_defaults_file_matches_builtin_fallback():
    # config/defaults.yaml is the documented copy; an installed wheel without it falls back
    # to the built-in dict, so the two must never drift apart.
    assert yaml.safe_load(s.DEFAULTS_FILE.read_text()) == s._BUILTIN_DEFAULTS


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
