"""Contract §1.5a/§1.6: destination-selectors.yaml validation and workload grouping, pure."""

import pytest

from bot.kratix.workloads import (
    DEFAULT_GROUP_ID,
    DirectorySelector,
    SelectorsError,
    group_id,
    group_workloads,
    parse_destination_selectors,
)
from bot.model.works import Selector


def test_group_ids_are_md5_of_directory():
    assert DEFAULT_GROUP_ID == "5058f1af8388633f609cadb75a75dc9d" == group_id(".")
    assert group_id("catalog") == "46f22f2a56ddd091f4b2b2c35c5ca989"


def test_parse_cleans_directories_and_accepts_sdk_empty_directory():
    parsed = parse_destination_selectors([
        {"directory": "", "matchLabels": {"env": "dev"}},
        {"directory": "./db/", "matchLabels": {"tier": "data"}},
    ])
    assert parsed == [DirectorySelector(".", {"env": "dev"}), DirectorySelector("db", {"tier": "data"})]
    assert parse_destination_selectors(None) == []


@pytest.mark.parametrize("doc, message", [
    ([{"directory": "a/b", "matchLabels": {"x": "y"}}],
     "invalid directory in destination-selectors.yaml: a/b, sub-directories are not allowed"),
    ([{"directory": "a", "matchLabels": {"x": "y"}}, {"directory": "a/", "matchLabels": {"z": "w"}}],
     "duplicate entries in destination-selectors.yaml"),
    ([{"directory": "a", "matchLabels": {}}], "entry with index 0 has no selectors"),
    ([{"directory": "a"}, {"matchLabels": {"x": "y"}}], "entry with index 0 has no selectors"),
    ([{"directory": "..", "matchLabels": {"x": "y"}}], "invalid directory"),
    ({"directory": "a"}, "must be a list"),
])
def test_parse_errors_like_kratix(doc, message):
    with pytest.raises(SelectorsError, match=message.replace("(", r"\(")):
        parse_destination_selectors(doc)


def test_grouping_directory_groups_and_default_group():
    files = {"a.yaml": b"a", "db/x.yaml": b"x", "db/sub/y": b"y", "other/z": b"z", ".hidden": b"h"}
    selectors = [DirectorySelector(".", {"env": "dev"}), DirectorySelector("db", {"tier": "data"})]
    groups = group_workloads(files, {"db", "db/sub", "other"}, selectors, {"zone": "eu"}, "resource")
    db, default = groups
    assert (db.directory, db.id) == ("db", group_id("db"))
    assert [w.filepath for w in db.workloads] == ["db/sub/y", "db/x.yaml"]
    assert db.selectors == [Selector({"tier": "data"}, "resource-workflow")]  # no promise selectors
    assert (default.directory, default.id) == (".", DEFAULT_GROUP_ID)
    assert [w.filepath for w in default.workloads] == [".hidden", "a.yaml", "other/z"]
    assert default.selectors == [Selector({"env": "dev"}, "resource-workflow"), Selector({"zone": "eu"}, "promise")]
    assert default.workloads[1].content == b"a"


def test_listed_directory_must_exist_but_may_be_empty_and_empty_default_is_omitted():
    with pytest.raises(SelectorsError, match="'db', which does not exist"):
        group_workloads({"a": b""}, set(), [DirectorySelector("db", {"x": "y"})], {}, "promise")
    groups = group_workloads({}, {"db"}, [DirectorySelector("db", {"x": "y"})], {"p": "q"}, "promise")
    assert [(g.directory, g.workloads, g.selectors) for g in groups] == [
        ("db", [], [Selector({"x": "y"}, "promise-workflow")])]


def test_directories_are_cleaned_like_go_filepath_clean():
    parsed = parse_destination_selectors([
        {"directory": "a/../b", "matchLabels": {"x": "y"}},
        {"directory": "dir/.", "matchLabels": {"x": "y"}},
        {"directory": "./", "matchLabels": {"x": "y"}},
    ])
    assert [p.directory for p in parsed] == ["b", "dir", "."]
    with pytest.raises(SelectorsError, match="invalid directory in destination-selectors.yaml: /a, sub-directories"):
        parse_destination_selectors([{"directory": "//a", "matchLabels": {"x": "y"}}])  # Go: Clean("//a") == "/a"


def test_unknown_fields_are_ignored_as_kratix_decodes_leniently():
    # sigs.k8s.io/yaml into WorkflowDestinationSelectors: unknown keys are dropped, not errors.
    parsed = parse_destination_selectors([{"directory": "db", "matchLabels": {"x": "y"}, "source": "mine"}])
    assert parsed == [DirectorySelector("db", {"x": "y"})]


@pytest.mark.parametrize("value", [True, 1, 1.5, ["a"]])
def test_non_string_label_values_fail_as_in_kratix(value):
    # matchLabels is map[string]string: Go's JSON decoding refuses a bool or number there
    # (and decodes null as "").
    with pytest.raises(SelectorsError, match=r"entry with index 0: matchLabels\.n must be a string"):
        parse_destination_selectors([{"matchLabels": {"env": "dev", "n": value}}])
    assert parse_destination_selectors([{"matchLabels": {"n": None}}])[0].match_labels == {"n": ""}
