#!/usr/bin/env bash
# The main job on the embedded default, end to end:
#   1. a local platform repo made from config/examples/platform (a Git repo under demo/),
#      a local bare Git state store (demo/state.git) and a local S3 server (demo/s3);
#   2. validate it, show the plan, reconcile it through real pipeline containers;
#   3. print the resulting state-store trees and the status table.
# Re-running starts from scratch. DEMO_DIR overrides the location (default: ./demo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

demo=${DEMO_DIR:-demo}
pb=.venv/bin/promisebot
section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

scripts/local-s3.sh "$demo" stop 2>/dev/null || true
rm -rf "$demo"
mkdir -p "$demo"
demo=$(cd "$demo" && pwd)
trap 'scripts/local-s3.sh "$demo" stop' EXIT

section "platform repo $demo/platform (from config/examples/platform)"
cp -r config/examples/platform "$demo/platform"
git -C "$demo/platform" init -q -b main
git -C "$demo/platform" add -A
git -C "$demo/platform" -c user.name=platform-team -c user.email=platform@example.com \
  commit -qm "Example platform: Promises, Destinations, State Stores, requests"
git init -q --bare -b main "$demo/state.git"   # GitStateStore platform-state: url ../state.git
scripts/local-s3.sh "$demo"                      # BucketStateStore s3-state: 127.0.0.1:8333
export PROMISEBOT_SECRETS_DIR="$demo/secrets"    # secretRef default/s3-credentials lives here
find "$demo/platform" -name '*.yaml' -not -path '*/.git/*' | sed "s|$demo/platform/|  |" | sort

section "promisebot validate"
$pb validate "$demo/platform"

section "promisebot plan (runs the pipelines, writes nothing)"
rc=0; $pb plan --platform "$demo/platform" || rc=$?
[ "$rc" = 2 ] || { echo "plan: expected exit 2 (changes), got $rc" >&2; exit 1; }

section "promisebot reconcile"
$pb reconcile --platform "$demo/platform"

section "state store platform-state (Git, $demo/state.git)"
git -C "$demo/state.git" log --format='  %h %s  (author: %an)' main
git -C "$demo/state.git" ls-tree -r --name-only main | sed 's/^/  /'

section "state store s3-state (S3 bucket promisebot-state)"
.venv/bin/python - "$demo/platform" <<'PY'
import os, sys
from pathlib import Path
from bot.model.objects import Ref
from bot.platform.loader import load_platform_dir
from bot.secrets import SecretResolver
from bot.statestores import open_store

platform = load_platform_dir(sys.argv[1])
store = platform.state_stores[Ref("BucketStateStore", "s3-state")]
writer = open_store(store, platform_root=Path(sys.argv[1]), cache_dir=Path(sys.argv[1]) / ".cache",
                    secrets=SecretResolver(Path(os.environ["PROMISEBOT_SECRETS_DIR"]), os.environ))
for key in writer.list_files(""):
    print(f"  {key}")
PY

section "promisebot status"
$pb status --platform "$demo/platform"

section "a second reconcile of the unchanged platform: no pipeline, no commit"
$pb reconcile --platform "$demo/platform" --all
