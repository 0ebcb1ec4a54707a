"""The example platform of config/examples/platform, reconciled for real: a copy committed to a
fresh platform repo, its GitStateStore `../state.git` a bare repo next to it, its
BucketStateStore pointed at the S3 fixture (tests/s3_server.py) with the secret
`default/s3-credentials` in a secrets directory (PROMISEBOT_SECRETS_DIR), and the example
pipeline images (scripts/build-images.sh)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config
from reconcile_fixtures import Env, git
from s3_server import S3Server

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "examples" / "platform"
BUCKET_STORE_FILE = "state-stores/s3-state.yaml"
_buckets = itertools.count()


class ExampleEnv(Env):
    """Env over the example platform, plus the S3 bucket and hand edits of both stores."""

    def __init__(self, tmp: Path, s3: S3Server) -> None:
        super().__init__(tmp, EXAMPLE)
        self.bucket = f"example-{next(_buckets)}"
        store = yaml.safe_load((self.platform / BUCKET_STORE_FILE).read_text())
        store["spec"].update(endpoint=s3.endpoint, bucketName=self.bucket)
        self.write(BUCKET_STORE_FILE, store)
        self.secrets_dir = tmp / "secrets"
        creds = self.secrets_dir / "default" / "s3-credentials"
        creds.mkdir(parents=True)
        (creds / "accessKeyID").write_text(s3.writer[0])
        (creds / "secretAccessKey").write_text(s3.writer[1])
        self.s3 = boto3.client("s3", endpoint_url=f"http://{s3.endpoint}", region_name="us-east-1",
                               aws_access_key_id=s3.writer[0], aws_secret_access_key=s3.writer[1],
                               config=Config(s3={"addressing_style": "path"}))
        self.s3.create_bucket(Bucket=self.bucket)
        self.commit("the example platform")

    # -- the bucket ----------------------------------------------------------
    def objects(self) -> dict[str, str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k: self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read().decode() for k in keys}

    def etags(self) -> dict[str, tuple[str, object]]:
        """(ETag, LastModified) per object: a rewrite of the same bytes changes LastModified."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {o["Key"]: (o["ETag"], o["LastModified"]) for page in pages for o in page.get("Contents", [])}

    def put_object(self, key: str, text: str | None) -> None:
        if text is None:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode())

    # -- the Git state store, edited by hand -----------------------------------------
    def edit_store(self, files: dict[str, str | None]) -> None:
        """One commit to the Git state store, made as a person would: clone, edit, push."""
        clone = self.tmp / "hand-edit"
        if not clone.exists():
            subprocess.run(["git", "clone", "-q", str(self.state), str(clone)], check=True, capture_output=True)
        git(clone, "pull", "-q", "--ff-only")
        for rel, text in files.items():
            path = clone / rel
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        git(clone, "add", "-A")
        git(clone, "-c", "user.name=hand", "-c", "user.email=hand@example.com", "commit", "-q", "-m", "by hand")
        git(clone, "push", "-q", "origin", "HEAD:main")


@pytest.fixture(name="example")
def example_fixture(tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> ExampleEnv:
    """The example platform in tmp_path, not reconciled yet; needs the `s3` fixture imported too."""
    env = ExampleEnv(tmp_path, s3)
    monkeypatch.setenv("PROMISEBOT_SECRETS_DIR", str(env.secrets_dir))
    return env
