"""BucketStateStore writer (contract §3.1, §3.7) on boto3.

A write lists, once, each delete prefix of the change set and the directories of the other files
it touches; uploads only the files whose content differs (an object's ETag is the md5 of its
content for single-part uploads, as Kratix compares); and deletes, in batches of up to 1,000
keys, the objects listed under a delete prefix that are not put again, plus explicit deletes.
S3 has no transaction: a failed write may be partly applied and the next write repairs it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bot.model.objects import StateStore
from bot.model.works import FileChanges
from bot.secrets import Secret, SecretNotFoundError, SecretResolver, redact
from bot.statestores import base
from bot.statestores.base import FileDiff, ReadyResult, StateStoreError, WriteResult

log = logging.getLogger(__name__)

ACCESS_KEY, IAM = "accessKey", "IAM"
PERMISSION_CHECK_FILE = ".kratix-write-permission-check"
DELETE_BATCH = 1000
_AWS_HOST = re.compile(r"(^|\.)amazonaws\.com(\.cn)?$")
_AWS_REGION = re.compile(r"^s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com")
_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken")


@dataclass(slots=True)
class _Plan:
    uploads: dict[str, bytes]
    deletes: list[str]
    added: list[str]
    modified: list[str]
    etags: dict[str, str]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class BucketStateStoreWriter:
    """A BucketStateStore (contract §3.7). See the module docstring for how writes work."""

    def __init__(self, store: StateStore, *, secrets: SecretResolver, max_workers: int = 16) -> None:
        spec = store.spec
        self.store = store
        self.bucket = str(spec.get("bucketName") or "")
        self.endpoint = str(spec.get("endpoint") or "").strip()
        if not self.bucket:
            raise ValueError(f"BucketStateStore {store.name}: spec.bucketName is required")
        if not self.endpoint or "://" in self.endpoint or "/" in self.endpoint:
            raise ValueError(
                f"BucketStateStore {store.name}: spec.endpoint must be host[:port] without a scheme or path "
                f"(got {self.endpoint!r}); set insecure: true for plain http"
            )
        self.insecure = bool(spec.get("insecure", False))
        self.dual_stack = bool(spec.get("useDualStack", False))
        self.auth_method = str(spec.get("authMethod") or ACCESS_KEY)
        if self.auth_method not in (ACCESS_KEY, IAM):
            raise ValueError(f"BucketStateStore {store.name}: authMethod must be accessKey or IAM")
        self._secrets = secrets
        self._secret_values: list[Secret] = []
        self._workers = max(1, max_workers)
        self._client: Any = None

    def __repr__(self) -> str:
        return f"BucketStateStoreWriter({self.store.name!r}, endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- public interface ---------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        key = base.normalise_path(path)
        try:
            return self._s3().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error("read", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from None

    def list_files(self, prefix: str) -> list[str]:
        prefix = base.normalise_path(prefix, directory=True)
        return sorted(key for key, _etag in self._objects_with_etags(prefix, recursive=True))

    def apply(self, changes: FileChanges, message: str, trailers: dict[str, str]) -> WriteResult:
        """Upload the changed files and delete the stale ones (contract §3.7). `message` and
        `trailers` only go to the log: objects carry no commit metadata."""
        base.check_trailers(trailers)
        norm = base.NormalisedChanges.of(changes)
        plan = self._plan(norm)
        if not plan.uploads and not plan.deletes:
            log.info("%s: nothing to write", self)
            return WriteResult(None)
        self._upload(plan.uploads)
        self._delete(plan.deletes)
        digest = hashlib.sha256()
        for key in sorted(plan.uploads):
            digest.update(f"put {key} {plan.etags[key]}\n".encode())
        for key in plan.deletes:
            digest.update(f"delete {key}\n".encode())
        log.info(
            "%s: %s: %d added, %d modified, %d removed (%s)", self, message.partition("\n")[0] or "write",
            len(plan.added), len(plan.modified), len(plan.deletes), trailers,
        )
        return WriteResult(digest.hexdigest(), plan.added, plan.modified, plan.deletes)

    def diff(self, changes: FileChanges) -> list[FileDiff]:
        plan = self._plan(base.NormalisedChanges.of(changes))
        out = [FileDiff(k, "add", None, plan.uploads[k]) for k in plan.added]
        out += [FileDiff(k, "modify", self.read(k), plan.uploads[k]) for k in plan.modified]
        out += [FileDiff(k, "remove", self.read(k), None) for k in plan.deletes]
        return sorted(out, key=lambda d: d.path)

    def check_ready(self) -> ReadyResult:
        """Start and abort a multipart upload of `<path>/.kratix-write-permission-check` (§3.7)."""
        try:
            client = self._s3()
        except (StateStoreError, ValueError, BotoCoreError) as exc:
            return ReadyResult.init_failed(redact(str(exc), self._secret_values))
        root = base.normalise_path(self.store.path, directory=True)
        key = f"{root}/{PERMISSION_CHECK_FILE}" if root else PERMISSION_CHECK_FILE
        try:
            upload = client.create_multipart_upload(Bucket=self.bucket, Key=key)
            client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
        except (ClientError, BotoCoreError) as exc:
            return ReadyResult.permission_failed(str(self._error("write", key, exc)))
        return ReadyResult.ok()

    # -- internals ----------------------------------------------------------------------

    def _s3(self) -> Any:
        """The boto3 client, made on first use (secrets are resolved here)."""
        if self._client is not None:
            return self._client
        session = boto3.session.Session()
        host = self.endpoint.rsplit(":", 1)[0].lower()
        aws = bool(_AWS_HOST.search(host))
        region_match = _AWS_REGION.match(host)
        region = region_match.group(1) if region_match else session.region_name or "us-east-1"
        s3_config: dict[str, Any] = {"addressing_style": "virtual" if aws else "path"}
        kwargs: dict[str, Any] = {"region_name": region, "use_ssl": not self.insecure}
        if aws and self.dual_stack:
            s3_config["use_dualstack_endpoint"] = True  # botocore resolves the dual-stack host
        else:
            kwargs["endpoint_url"] = f"{'http' if self.insecure else 'https'}://{self.endpoint}"
        if self.auth_method == ACCESS_KEY:
            ref = self.store.secret_ref
            if ref is None:
                raise ValueError(f"BucketStateStore {self.store.name}: authMethod accessKey needs a secretRef")
            try:
                key_id, secret = self._secrets.secret(ref, "accessKeyID"), self._secrets.secret(ref, "secretAccessKey")
            except SecretNotFoundError as exc:
                raise StateStoreError(f"BucketStateStore {self.store.name}: {exc}") from None
            self._secret_values = [secret]
            kwargs |= {"aws_access_key_id": key_id.reveal(), "aws_secret_access_key": secret.reveal()}
        config = Config(
            # The stub's TypedDict for `s3` lacks "use_dualstack_endpoint", which botocore takes there.
            s3=s3_config,  # type: ignore[arg-type]
            connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=self._workers,
        )
        self._client = session.client("s3", config=config, **kwargs)
        return self._client

    def _error(self, op: str, key: str, exc: Exception) -> StateStoreError:
        where = f"S3 {op} s3://{self.bucket}/{key} at {self.endpoint}"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code, text = str(err.get("Code", "")), str(err.get("Message", ""))
            detail = f"{code}: {text}"
            if code in _AUTH_CODES:
                ref = self.store.secret_ref
                hint = (
                    f"check the accessKeyID/secretAccessKey keys of secret {ref.namespace}/{ref.name}"
                    if self.auth_method == ACCESS_KEY and ref
                    else "check the credentials of the default AWS credential chain (authMethod IAM)"
                )
                detail = f"access refused ({detail}); {hint}"
        else:
            detail = str(exc)
        return StateStoreError(redact(f"{where}: {detail}", self._secret_values))

    def _objects_with_etags(self, prefix: str, *, recursive: bool) -> Iterator[tuple[str, str]]:
        """(key, ETag) under the directory `prefix` ("" = the bucket root); direct children only
        unless `recursive`."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{prefix}/" if prefix else ""}
        if not recursive:
            args["Delimiter"] = "/"
        try:
            for page in self._s3().get_paginator("list_objects_v2").paginate(**args):
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        yield obj["Key"], str(obj.get("ETag", "")).strip('"')
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", args["Prefix"], exc) from None

    def _plan(self, norm: base.NormalisedChanges) -> _Plan:
        existing: dict[str, str] = {}
        prefixes = norm.outermost_prefixes()
        for prefix in prefixes:
            existing.update(self._objects_with_etags(prefix, recursive=True))
        listed_dirs: set[str] = set()
        for path in sorted(set(norm.puts) | norm.deletes):
            directory = path.rpartition("/")[0]
            if directory in listed_dirs or any(a in norm.delete_prefixes for a in base.ancestors(path)):
                continue
            listed_dirs.add(directory)
            existing.update(self._objects_with_etags(directory, recursive=False))
        etags = {key: _md5(content) for key, content in norm.puts.items()}
        uploads = {key: content for key, content in norm.puts.items() if existing.get(key) != etags[key]}
        return _Plan(
            uploads=uploads,
            deletes=sorted(k for k in existing if k not in norm.puts and norm.removes(k)),
            added=sorted(k for k in uploads if k not in existing),
            modified=sorted(k for k in uploads if k in existing),
            etags=etags,
        )

    def _upload(self, uploads: dict[str, bytes]) -> None:
        client = self._s3()

        def put(key: str) -> None:
            try:
                client.put_object(Bucket=self.bucket, Key=key, Body=uploads[key])
            except (ClientError, BotoCoreError) as exc:
                raise self._error("write", key, exc) from None

        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            for future in [pool.submit(put, key) for key in sorted(uploads)]:
                future.result()

    def _delete(self, keys: list[str]) -> None:
        client = self._s3()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                result = client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._error("delete", batch[0], exc) from None
            errors = result.get("Errors") or []
            if errors:
                first = errors[0]
                raise StateStoreError(
                    f"S3 delete at {self.endpoint} failed for {len(errors)} object(s) in s3://{self.bucket}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')}: {first.get('Message')}"
                )

