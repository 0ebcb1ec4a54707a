"""Contract §1.6 output safety on crafted tar streams (cases a container cannot produce:
escaping paths, device files), plus caps and metadata parsing. The Docker-produced cases
(symlink, hard link, FIFO, caps) are in test_runner_docker.py."""

import io
import tarfile

import pytest

from bot.status_merge import StatusError
from runners.outputs import Limits, OutputRejected, Tree, parse_metadata, read_kratix_archive

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
    with pytest.raises(OutputRejected, match="big: /kratix/output exceeds 1000 bytes"):
        read_kratix_archive(archive(("kratix/output/big", F, b"x" * 1001)), LIMITS, LIMITS)
    many = [(f"kratix/output/f{i}", F, b"") for i in range(11)]
    with pytest.raises(OutputRejected, match="more than 10 files"):
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
    with pytest.raises(StatusError, match="too many YAML nodes"):
        parse_metadata(meta, "resource", "configure", 100000)
    meta.files["status.yaml"] = b"a: [\n"
    with pytest.raises(StatusError, match="/kratix/metadata/status.yaml: not valid YAML"):
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
