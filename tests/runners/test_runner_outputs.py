"""Contract §1.6 output safety on crafted tar streams (cases a container cannot produce:
escaping paths, device files), plus caps and metadata parsing. The Docker-produced cases
(symlink, hard link, FIFO, caps) are in test_runner_docker.py."""

import io
import tarfile
import time

import pytest

from bot.kratix.status_merge import StatusError
from bot.kratix.workloads import SelectorsError
from runners.outputs import METADATA_CAP, Limits, OutputRejected, Tree, parse_metadata, read_kratix_archive

LIMITS = Limits(max_bytes=1000, max_files=10)


def archive(*members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.linkname = data.decode() if data else ""
                tar.addfile(info)
    raw = buf.getvalue()
    return [raw[i:i + 100] for i in range(0, len(raw), 100)]  # chunked like an HTTP stream


D, F = tarfile.DIRTYPE, tarfile.REGTYPE


def test_reads_files_and_directories_byte_for_byte():
    out, meta = read_kratix_archive(archive(
        ("kratix", D, b""), ("kratix/input/object.yaml", F, b"ignored"), ("kratix/output/a.yaml", F, b"---\na: 1\n---\nb"),
        ("kratix/output/d/e/bin", F, bytes(range(256))), ("kratix/output/empty", D, b""),
        ("kratix/metadata/status.yaml", F, b"message: hi\n"), ("kratix/metadata/link", tarfile.SYMTYPE, b"x"),
    ), LIMITS, LIMITS)
    assert out.files == {"a.yaml": b"---\na: 1\n---\nb", "d/e/bin": bytes(range(256))}
    assert out.directories == {"empty"}
    assert meta.files == {"status.yaml": b"message: hi\n"}  # scratch symlink in metadata ignored


@pytest.mark.parametrize("member, message", [
    (("kratix/output/../../etc/passwd", F, b"x"), "path escapes /kratix/output"),
    (("/kratix/output/abs", F, b"x"), "path escapes"),
    (("kratix/output/dev", tarfile.CHRTYPE, b""), "/kratix/output/dev: is a device file"),
    (("kratix/output/blk", tarfile.BLKTYPE, b""), "is a device file"),
    (("kratix/output/l", tarfile.SYMTYPE, b"/etc/shadow"), "is a symbolic link (to /etc/shadow)"),
    (("kratix/output/h", tarfile.LNKTYPE, b"kratix/output/a"), "is a hard link"),
    (("kratix/metadata/status.yaml", tarfile.SYMTYPE, b"/etc/passwd"), "/kratix/metadata/status.yaml: is a symbolic link"),
])
def test_rejected_members_name_the_file(member, message):
    with pytest.raises(OutputRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_kratix_archive(archive(("kratix/output/a", F, b"a"), member), LIMITS, LIMITS)


def test_caps_on_bytes_and_files():
    with pytest.raises(OutputRejected, match=r"^/kratix/output/big: 1001 bytes, which takes /kratix/output to 1001 "
                       r"bytes, over the 1000-byte cap \(the runner.maxOutputBytes setting\)$"):
        read_kratix_archive(archive(("kratix/output/big", F, b"x" * 1001)), LIMITS, LIMITS)
    many = [(f"kratix/output/f{i}", F, b"") for i in range(11)]
    with pytest.raises(OutputRejected, match=r"more than 10 files in /kratix/output \(the cap: the "
                       r"runner.maxOutputFiles setting\)"):
        read_kratix_archive(archive(*many), LIMITS, LIMITS)
    out, _ = read_kratix_archive(archive(*many), None, LIMITS)  # delete: output not read at all
    assert out.files == {}


def test_metadata_parsing_and_errors():
    _, meta = read_kratix_archive(archive(
        ("kratix/metadata/status.yaml", F, b"message: ok\nurl: u\n"),
        ("kratix/metadata/workflow-control.yaml", F, b"retryAfter: 90s\n"),
        ("kratix/metadata/destination-selectors.yaml", F, b"- matchLabels: {env: dev}\n"),
    ), LIMITS, LIMITS)
    parsed = parse_metadata(meta, "resource", "configure", 1000)
    assert parsed.status == {"message": "ok", "url": "u"}
    assert parsed.control.retry_after_seconds == 90
    assert parsed.selectors[0].directory == "."
    assert parse_metadata(meta, "resource", "delete", 1000).selectors == []
    meta.files["status.yaml"] = b"a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefg", "bcdefgh", strict=True))
    with pytest.raises(StatusError, match=r"/kratix/metadata/status.yaml, line 1: YAML aliases expand to 123456797 nodes from 27 "
                       r"written \(alias bomb"):
        parse_metadata(meta, "resource", "configure", 100000)
    meta.files["status.yaml"] = b"a: [\n"
    with pytest.raises(StatusError, match=r"/kratix/metadata/status.yaml: malformed YAML: .*\(line 2, column 1\)"):
        parse_metadata(meta, "resource", "configure", 1000)


def test_metadata_files_use_their_first_yaml_document_like_go_yaml():
    # Kratix reads metadata with sigs.k8s.io/yaml, which decodes the first document only and
    # never looks at the rest (even a broken one).
    tree = Tree(files={"status.yaml": b"message: first\n---\nmessage: second\n",
                       "workflow-control.yaml": b"---\nsuspend: true\n--- [\n",
                       "destination-selectors.yaml": b"- matchLabels: {a: b}\n---\n- {}\n"})
    parsed = parse_metadata(tree, "resource", "configure", 1000)
    assert parsed.status == {"message": "first"}
    assert parsed.control.suspend
    assert [s.match_labels for s in parsed.selectors] == [{"a": "b"}]


def test_a_real_file_size_is_reported_with_the_cap_and_setting_that_applied():
    # Issue 10: a 3,000,092-byte file was reported with another size and the wrong setting.
    big = b"x" * 3_000_092
    with pytest.raises(OutputRejected) as err:
        read_kratix_archive(archive(("kratix/output/a", F, b"abcd"), ("kratix/output/big.yaml", F, big)),
                            Limits(1_048_576, 10), LIMITS)
    assert str(err.value) == ("/kratix/output/big.yaml: 3000092 bytes, which takes /kratix/output to 3000096 bytes, "
                              "over the 1048576-byte cap (the runner.maxOutputBytes setting)")


def test_metadata_caps_name_the_metadata_cap_not_the_output_settings():
    metadata = Limits(1000, 2, METADATA_CAP, METADATA_CAP)
    with pytest.raises(OutputRejected) as err:
        read_kratix_archive(archive(("kratix/metadata/scratch", F, b"x" * 1500)), LIMITS, metadata)
    assert "/kratix/metadata/scratch: 1500 bytes" in str(err.value)
    assert "promisebot's fixed cap for /kratix/metadata, not a setting" in str(err.value)
    assert "maxOutputBytes" not in str(err.value)
    with pytest.raises(OutputRejected) as err:
        read_kratix_archive(archive(*[(f"kratix/metadata/f{i}", F, b"") for i in range(3)]), LIMITS, metadata)
    assert "more than 2 files in /kratix/metadata" in str(err.value) and "maxOutputFiles" not in str(err.value)


def test_a_backslash_in_an_output_file_name_is_named_as_such_not_as_an_escape():
    with pytest.raises(OutputRejected) as err:
        read_kratix_archive(archive(("kratix/output/back\\slash.yaml", F, b"a: 1\n")), LIMITS, LIMITS)
    message = str(err.value)
    assert message.startswith("/kratix/output/back\\slash.yaml: the file name contains a backslash")
    assert "escapes" not in message
    # a scratch file between containers may be called anything
    _, meta = read_kratix_archive(archive(("kratix/metadata/x\\y", F, b"1"),
                                          ("kratix/metadata/status.yaml", F, b"a: 1\n")), LIMITS, LIMITS)
    assert meta.files["x\\y"] == b"1"


def _nested(depth: int) -> bytes:
    return ("".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "x\n").encode()


@pytest.mark.parametrize("name, error", [
    ("status.yaml", StatusError), ("workflow-control.yaml", StatusError),
    ("destination-selectors.yaml", SelectorsError),
])
def test_deeply_nested_metadata_is_refused_naming_the_file_and_the_limit(name, error):
    # Issue 6: 500 levels crashed `promisebot test` (RecursionError traceback).
    tree = Tree(files={name: _nested(500)})
    with pytest.raises(error) as err:
        parse_metadata(tree, "resource", "configure", 10 * 1024 * 1024)
    assert str(err.value) == (f"/kratix/metadata/{name}, line 101: nesting too deep: more than 100 levels of nested "
                              "mappings and lists (promisebot's limit is 100 levels); refused")
    flow = Tree(files={name: b"[" * 5000 + b"]" * 5000})
    with pytest.raises(error, match=f"/kratix/metadata/{name}, line 1: nesting too deep: more than 100 levels"):
        parse_metadata(flow, "resource", "configure", 10 * 1024 * 1024)


def test_status_nested_up_to_the_limit_is_accepted():
    parsed = parse_metadata(Tree(files={"status.yaml": _nested(100)}), "resource", "configure", 1 << 20)
    depth, node = 0, parsed.status
    while isinstance(node, dict):
        depth, node = depth + 1, node["a"]
    assert depth == 100 and node == "x"


def test_a_large_status_without_aliases_is_not_an_alias_bomb_and_loads_fast():
    # Issue 10: 3.3 MB, 300k plain keys, was refused as "too many YAML nodes once aliases are
    # expanded" after 23 s. No alias, no bomb; measured 1.4 s here (the old loader took ~12 s
    # to reach its wrong verdict on the same machine).
    data = "".join(f"k{i:06d}: v\n" for i in range(300_000)).encode()
    assert len(data) == 3_300_000
    started = time.monotonic()
    parsed = parse_metadata(Tree(files={"status.yaml": data}), "resource", "configure", 10 * 1024 * 1024)
    elapsed = time.monotonic() - started
    assert len(parsed.status) == 300_000 and parsed.status["k299999"] == "v"
    assert elapsed < 10, elapsed  # generous: two cores shared by several test runs


def test_moderate_aliases_in_metadata_are_fine():
    data = b"base: &b {x: 1}\n" + b"".join(f"c{i}: *b\n".encode() for i in range(1000))
    parsed = parse_metadata(Tree(files={"status.yaml": data}), "resource", "configure", 1 << 20)
    assert parsed.status["c999"] == {"x": 1}
