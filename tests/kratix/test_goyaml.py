"""bot/kratix/goyaml.py against gopkg.in/yaml.v2 v2.4.0 (contract §4.1 step 6 static dependencies,
§3.2 none-mode state files). golden/goyaml/cases.yaml is what yaml.v2's Encoder wrote for the
documents of golden/goyaml/cases.json (decoded by Go's encoding/json): quoting of strings
yaml.v2 would resolve as non-strings, single quotes where plain is not allowed, natural key
order, Go float formatting, line folding, block scalars, escapes."""

import json

import pytest
from paths import GOLDEN

from bot.kratix.goyaml import dump_v2, go_float, plain_tag

GOLDEN = GOLDEN / "goyaml"


def test_matches_yaml_v2_byte_for_byte():
    documents = json.loads((GOLDEN / "cases.json").read_text())
    assert dump_v2(documents) == (GOLDEN / "cases.yaml").read_bytes()


@pytest.mark.parametrize("value, text", [(0.5, "0.5"), (1e-05, "1e-05"), (1234567.5, "1.2345675e+06"),
                                         (123456.5, "123456.5"), (1e21, "1e+21"), (-0.25, "-0.25")])
def test_floats_use_go_shortest_g(value, text):
    assert go_float(value) == text


@pytest.mark.parametrize("text, tag", [("y", "bool"), ("Off", "bool"), ("", "null"), ("~", "null"), ("1_000", "int"),
                                       ("0o17", "int"), ("08", "float"), ("1e3", "float"), (".5", "float"),
                                       ("2001-12-14", "timestamp"), ("2001-13-01", "str"), ("0x", "str"),
                                       ("1.2.3", "str"), ("=", "str"), ("<<", "str")])
def test_plain_scalars_resolve_as_yaml_v2_does(text, tag):
    assert plain_tag(text) == "tag:yaml.org,2002:" + tag
