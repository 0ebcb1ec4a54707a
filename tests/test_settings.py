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


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("250ms", 0.25), ("0", 0)],
)
def test_go_durations(text, seconds):
    assert s.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1d", "m5", "5m3", "-1s"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        s.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"), [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9), ("100k", 10**5), (4096, 4096)]
)
def test_quantities(text, size):
    assert s.parse_quantity(text) == size


def test_bad_quantity():
    with pytest.raises(ValueError, match="quantity"):
        s.parse_quantity("lots")
