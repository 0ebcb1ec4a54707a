"""Contract §1.7: the Kratix-compatible `kratix.io/hash` and Go's encoding/json, pure."""

from __future__ import annotations

import copy
import hashlib

import pytest
from redis_objects import redis_promise, redis_request

from bot.kratix.spechash import go_json, spec_hash

P = redis_promise()
R = redis_request()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_go_json_is_compact_sorted_and_escapes_html():
    value = {"b": [1, 2.5, True, None], "a": {"z": "<tag> & é", "y": 1.0}}
    assert go_json(value) == '{"a":{"y":1,"z":"\\u003ctag\\u003e \\u0026 é"},"b":[1,2.5,true,null]}'.encode()


@pytest.mark.parametrize(
    "number,text",
    [
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (0.000001, "0.000001"),
        (-0.5, "-0.5"),
    ],
)
def test_go_json_floats(number, text):
    assert go_json(number) == text.encode()


def test_promise_workflow_hash():
    p = redis_promise({"destinationSelectors": [{"matchLabels": {"env": "prod"}}], "api": {"kind": "CRD"}})
    expected = md5('{"api":{"kind":"CRD"},"destinationSelectors":[{"matchLabels":{"env":"prod"}}]}')
    assert spec_hash(p) == expected


def test_resource_workflow_hash():
    p = redis_promise({"dependencies": []})
    r = redis_request({"size": "small", "memory": "1<2"})
    promise_part = md5('{"dependencies":[]}')
    request_part = md5('{"memory":"1\\u003c2","size":"small"}')
    assert spec_hash(p, r) == md5(f"{promise_part}-{request_part}")


def test_request_without_spec_hashes_null():
    r = copy.deepcopy(R)
    del r.body["spec"]
    assert spec_hash(P, r) == md5(f"{md5(go_json(P.spec).decode())}-{md5('null')}")


def test_hash_changes_with_spec_not_labels():
    assert spec_hash(P, R) == spec_hash(P, redis_request(labels={"team": "a"}))
    assert spec_hash(P, R) != spec_hash(P, redis_request({"size": "large"}))
