"""BucketStateStore (contract §3.7) against a real S3 server (SeaweedFS, see s3_server.py)."""

from __future__ import annotations

import itertools

import boto3
import pytest
from botocore.config import Config
from s3_server import S3Server

from bot.model.objects import SecretRef, Source, StateStore
from bot.model.works import FileChanges
from bot.secrets import SecretResolver
from bot.statestores import StateStoreError, open_store
from bot.statestores.bucket import BucketStateStoreWriter

pytestmark = pytest.mark.s3
CREDS = SecretRef("s3-creds", "default")
_names = itertools.count()


def admin(server: S3Server):
    return boto3.client("s3", endpoint_url=f"http://{server.endpoint}", region_name="us-east-1",
                        aws_access_key_id=server.writer[0], aws_secret_access_key=server.writer[1],
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(s3):
    name = f"state-{next(_names)}"
    admin(s3).create_bucket(Bucket=name)
    return name


def env_for(key: tuple[str, str]) -> dict[str, str]:
    return {"PROMISEBOT_SECRET_DEFAULT_S3_CREDS_ACCESSKEYID": key[0],
            "PROMISEBOT_SECRET_DEFAULT_S3_CREDS_SECRETACCESSKEY": key[1]}


def writer(server: S3Server, bucket: str, key: tuple[str, str] | None = None, path: str = "platform",
           auth: str = "accessKey", secret: SecretRef | None = CREDS, tmp_path=None) -> BucketStateStoreWriter:
    st = StateStore(kind="BucketStateStore", name="s3", body={}, source=Source("stores.yaml"), path=path,
                    spec={"bucketName": bucket, "endpoint": server.endpoint, "insecure": True, "authMethod": auth},
                    secret_ref=secret)
    environ = env_for(key or server.writer)
    w = open_store(st, platform_root=tmp_path or ".", secrets=SecretResolver(None, environ), cache_dir=tmp_path or ".")
    assert isinstance(w, BucketStateStoreWriter)
    return w


def objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = admin(server)
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_writes_and_mirrors_a_placement(s3, bucket):
    w = writer(s3, bucket)
    place = "platform/dev/resources/default/redis/a/configure/5058f"
    first = w.apply(FileChanges(puts={f"{place}/keep.yaml": b"1", f"{place}/gone.yaml": b"2",
                                      f"{place}/sub/deep.yaml": b"3", "platform/dev/other.yaml": b"4",
                                      "platform/dev/old.yaml": b"5"}), "seed", {"Platform-Commit": "abc"})
    assert first.revision and len(first.added) == 5
    result = w.apply(FileChanges(puts={f"{place}/keep.yaml": b"1 changed", f"{place}/new.yaml": b"6"},
                                 deletes={"platform/dev/old.yaml"}, delete_prefixes={place}), "mirror", {})
    assert result.added == [f"{place}/new.yaml"] and result.modified == [f"{place}/keep.yaml"]
    assert result.removed == ["platform/dev/old.yaml", f"{place}/gone.yaml", f"{place}/sub/deep.yaml"]
    assert result.revision and result.revision != first.revision
    assert objects(s3, bucket) == {f"{place}/keep.yaml": b"1 changed", f"{place}/new.yaml": b"6",
                                          "platform/dev/other.yaml": b"4"}
    assert w.read(f"{place}/new.yaml") == b"6" and w.read(f"{place}/gone.yaml") is None
    assert w.list_files("platform/dev") == sorted(objects(s3, bucket))
    assert w.list_files(place) == [f"{place}/keep.yaml", f"{place}/new.yaml"]


def test_unchanged_objects_are_not_uploaded_again(s3, bucket):
    w = writer(s3, bucket)
    changes = FileChanges(puts={"platform/d/same.yaml": b"same", "platform/d/edit.yaml": b"v1"},
                          delete_prefixes={"platform/d"})
    w.apply(changes, "seed", {})
    # Mark both objects out of band (same bytes, with metadata): a re-upload would drop the mark.
    client = admin(s3)
    for key, body in (("platform/d/same.yaml", b"same"), ("platform/d/edit.yaml", b"v1")):
        client.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"marker": "out-of-band"})
    assert w.apply(changes, "again", {}).revision is None
    changes.puts["platform/d/edit.yaml"] = b"v2"
    result = w.apply(changes, "edit", {})
    assert result.modified == ["platform/d/edit.yaml"] and result.added == [] and result.removed == []
    assert client.head_object(Bucket=bucket, Key="platform/d/same.yaml")["Metadata"] == {"marker": "out-of-band"}
    assert client.head_object(Bucket=bucket, Key="platform/d/edit.yaml")["Metadata"] == {}


def test_deletes_are_batched_past_one_thousand_keys(s3, bucket):
    w = writer(s3, bucket)
    seed = {f"platform/big/{i:04d}.yaml": b"x" for i in range(1100)}
    assert len(w.apply(FileChanges(puts=seed), "seed", {}).added) == 1100
    result = w.apply(FileChanges(puts={"platform/big/0000.yaml": b"x"}, delete_prefixes={"platform/big"}),
                     "shrink", {})
    assert len(result.removed) == 1099 and result.added == result.modified == []
    assert objects(s3, bucket) == {"platform/big/0000.yaml": b"x"}


def test_diff_shows_old_and_new_without_writing(s3, bucket):
    w = writer(s3, bucket)
    w.apply(FileChanges(puts={"platform/a/x.yaml": b"old", "platform/a/y.yaml": b"y"}), "seed", {})
    diffs = w.diff(FileChanges(puts={"platform/a/x.yaml": b"new", "platform/b/n.yaml": b"n"},
                               delete_prefixes={"platform/a"}))
    assert [(d.path, d.action, d.old, d.new) for d in diffs] == [
        ("platform/a/x.yaml", "modify", b"old", b"new"), ("platform/a/y.yaml", "remove", b"y", None),
        ("platform/b/n.yaml", "add", None, b"n"),
    ]
    assert objects(s3, bucket) == {"platform/a/x.yaml": b"old", "platform/a/y.yaml": b"y"}


def test_ready_check_uses_a_multipart_upload_it_aborts(s3, bucket):
    ready = writer(s3, bucket).check_ready()
    assert (ready.ready, ready.reason, ready.message) == (True, "StateStoreReady", "State store is ready")
    assert objects(s3, bucket) == {}
    assert admin(s3).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_wrong_key_is_a_clear_error_without_the_secret(s3, bucket):
    wrong = (s3.writer[0], "not-the-secret-key")
    w = writer(s3, bucket, key=wrong)
    with pytest.raises(StateStoreError) as err:
        w.apply(FileChanges(puts={"platform/a.yaml": b"a"}), "x", {})
    message = str(err.value)
    assert "SignatureDoesNotMatch" in message and "secret default/s3-creds" in message
    assert "not-the-secret-key" not in message and s3.writer[1] not in message
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorValidatingPermissions")
    assert "not-the-secret-key" not in ready.message
    assert objects(s3, bucket) == {}


def test_read_only_key_fails_the_permission_check(s3, bucket):
    w = writer(s3, bucket, key=s3.reader)
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorValidatingPermissions")
    assert "AccessDenied" in ready.message and ".kratix-write-permission-check" in ready.message
    assert w.list_files("platform") == []  # reading is allowed


def test_missing_secret_and_bad_spec(s3, bucket, tmp_path):
    st = StateStore(kind="BucketStateStore", name="s3", body={}, source=Source("s.yaml"), path="",
                    spec={"bucketName": bucket, "endpoint": s3.endpoint, "insecure": True},
                    secret_ref=CREDS)
    w = open_store(st, platform_root=tmp_path, secrets=SecretResolver(tmp_path, {}), cache_dir=tmp_path)
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorInitialisingWriter")
    assert str(tmp_path / "default" / "s3-creds" / "accessKeyID") in ready.message
    (tmp_path / "default" / "s3-creds").mkdir(parents=True)
    (tmp_path / "default" / "s3-creds" / "accessKeyID").write_text(s3.writer[0] + "\n")
    (tmp_path / "default" / "s3-creds" / "secretAccessKey").write_text(s3.writer[1] + "\n")
    assert w.check_ready().ready
    st.spec["endpoint"] = f"http://{s3.endpoint}"
    with pytest.raises(ValueError, match="without a scheme"):
        open_store(st, platform_root=tmp_path, secrets=SecretResolver(None, {}), cache_dir=tmp_path)


def test_iam_uses_the_default_credential_chain(s3, bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.writer[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.writer[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    w = writer(s3, bucket, auth="IAM", secret=None)
    assert w.check_ready().ready
    assert w.apply(FileChanges(puts={"platform/iam.yaml": b"i"}), "iam", {}).added == ["platform/iam.yaml"]
