#!/usr/bin/env bash
# Build the local images promisebot's tests and examples run. Nothing is pulled.
#
#   promisebot/busybox:latest   FROM scratch + Debian's static busybox and its applet links
#   promisebot/python:latest    debootstrap'd Debian bookworm (minbase) + python3 + kratix-sdk
#   promisebot/kubectl:latest   debootstrap'd Debian bookworm (minbase) + kubernetes-client (kubectl)
#   promisebot-examples/<name>:v1   every config/examples/images/<name>/Dockerfile (base first)
#
# With --deploy, also the images of the deployment (docs/deploy.md, docker-compose.yml):
#   promisebot/runtime-base:latest  debootstrap'd bookworm (minbase) + python3, python3-venv,
#                                   git, openssh-client, ca-certificates: the Dockerfile's BASE
#                                   here, instead of python:3.11-slim-bookworm from a registry
#   promisebot/redis:latest         debootstrap'd bookworm (minbase) + Debian's redis-server
#   promisebot/promisebot:latest    the Dockerfile at the root, FROM promisebot/runtime-base
#
# Idempotent: an image already present is skipped (examples and promisebot/promisebot: unless
# their build context changed) unless --force is given. Each debootstrap rootfs is cached as a
# tarball under ${XDG_CACHE_HOME:-~/.cache}/promisebot/ so it is made once per machine.
set -euo pipefail

FORCE=0
DEPLOY=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --deploy) DEPLOY=1 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $arg (use --force, --deploy)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/promisebot"
MIRROR="${PROMISEBOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export DOCKER_BUILDKIT=0  # the classic builder uses local base images and never pulls
mkdir -p "$CACHE"

present() { [[ $FORCE == 0 ]] && docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "build-images: $*" >&2; }

WORK=$(mktemp -d)
MOUNTED=()
cleanup() {
  local m
  for m in "${MOUNTED[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

build_busybox() {
  local image=promisebot/busybox:latest
  if present "$image"; then log "$image present"; return; fi
  if [[ ! -x /bin/busybox ]] || ! file_is_static /bin/busybox; then
    log "installing busybox-static"
    apt-get install -y -q busybox-static >/dev/null
  fi
  local ctx="$WORK/busybox" link
  mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc" "$ctx/rootfs/root"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  # `busybox --install -s` at build time: FROM scratch has no shell to RUN it in.
  while read -r link; do
    mkdir -p "$ctx/rootfs/$(dirname "$link")"
    [[ -e "$ctx/rootfs/$link" ]] || ln -s /bin/busybox "$ctx/rootfs/$link"
  done < <(/bin/busybox --list-full)
  chmod 1777 "$ctx/rootfs/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
  log "building $image"
  docker build -q -t "$image" "$ctx" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err" >&2; exit 1; }
}

file_is_static() { ! ldd "$1" >/dev/null 2>&1; }

debootstrap_cached() {
  # debootstrap_cached NAME PACKAGES: prints the path of the cached bookworm minbase rootfs
  # tarball NAME with PACKAGES (comma-separated) installed, making it if needed.
  local name=$1 include=$2
  local tarball="$CACHE/bookworm-minbase-$name.tar"
  if [[ -s "$tarball" && $FORCE == 0 ]]; then echo "$tarball"; return; fi
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  local dir="$WORK/debootstrap-$name"
  log "debootstrap bookworm (minbase + $include) from $MIRROR; once per machine"
  debootstrap --variant=minbase --include="$include" \
    bookworm "$dir" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"
  echo "$tarball"
}

debootstrap_rootfs() {
  # The cached minbase rootfs with python3 the test image promisebot/python is made from.
  debootstrap_cached python3 python3,python3-pip,python3-venv,ca-certificates
}

build_python() {
  local image=promisebot/python:latest
  if present "$image"; then log "$image present"; return; fi
  local base root="$WORK/python"
  base=$(debootstrap_rootfs)
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$base"
  # pip inside the chroot reaches PyPI the way the host does.
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  [[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$root/etc/pip.conf"
  if [[ -n "${PIP_CERT:-}" && -f "$PIP_CERT" ]]; then
    mkdir -p "$root$(dirname "$PIP_CERT")"
    cp "$PIP_CERT" "$root$PIP_CERT"
  fi
  mount -t proc proc "$root/proc" && MOUNTED+=("$root/proc")
  mount --bind /dev "$root/dev" && MOUNTED+=("$root/dev")
  log "pip install kratix-sdk into the python rootfs"
  local pipenv=() v
  for v in $(compgen -e | grep '^PIP_' | grep -v '^PIP_FIND_LINKS$'); do pipenv+=("$v=${!v}"); done
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_ROOT_USER_ACTION=ignore "${pipenv[@]}" \
    chroot "$root" python3 -m pip install -q --no-cache-dir --break-system-packages --no-warn-script-location kratix-sdk
  umount -l "$root/proc" "$root/dev"
  MOUNTED=()
  rm -rf "$root"/root/.cache
  import_rootfs "$image" "$root" 'ENV PYTHONDONTWRITEBYTECODE=1' 'CMD ["python3"]'
}

build_kubectl() {
  # kubectl for pipelines that talk to their run's Kubernetes API (docs/runner.md); Debian
  # bookworm's kubernetes-client, with busybox's sh for scripts.
  local image=promisebot/kubectl:latest
  if present "$image"; then log "$image present"; return; fi
  import_debootstrap "$image" kubectl kubernetes-client,ca-certificates '["kubectl", "version", "--client"]'
}

import_debootstrap() {  # import_debootstrap IMAGE NAME PACKAGES CMD: a slim cached bookworm rootfs as IMAGE
  local image=$1 base root="$WORK/$2"
  base=$(debootstrap_cached "$2" "$3")
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$base"
  import_rootfs "$image" "$root" 'ENV LANG=C.UTF-8' "CMD $4"
}

import_rootfs() {  # import_rootfs IMAGE DIR [INSTRUCTION...]: DIR slimmed, imported as IMAGE, removed
  local image=$1 root=$2 change changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
  shift 2
  for change in "$@"; do changes+=(--change "$change"); done
  slim_rootfs "$root"
  log "importing $image"
  tar -C "$root" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
  rm -rf "$root"
}

context_hash() {  # a stable hash of a build context's files
  tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . | sha256sum | cut -c1-16
}

build_examples() {
  # config/examples/images/base (the shared helpers) first: the others are built FROM it, so
  # its context hash is part of theirs and a change to it rebuilds them too.
  local images=$ROOT/config/examples/images dir name image hash have base_hash
  local -a dirs=("$images/base/")
  for dir in "$images"/*/; do [[ $(basename "$dir") == base ]] || dirs+=("$dir"); done
  base_hash=$(context_hash "$images/base")
  for dir in "${dirs[@]}"; do
    [[ -f "$dir/Dockerfile" ]] || continue
    name=$(basename "$dir")
    image="promisebot-examples/$name:v1"
    hash=$(context_hash "$dir")
    [[ $name == base ]] || hash=$(printf '%s %s' "$base_hash" "$hash" | sha256sum | cut -c1-16)
    have=$(docker image inspect -f '{{index .Config.Labels "promisebot.context-hash"}}' "$image" 2>/dev/null || true)
    if [[ $FORCE == 0 && "$have" == "$hash" ]]; then log "$image present"; continue; fi
    log "building $image"
    docker build -q --label "promisebot.context-hash=$hash" -t "$image" "$dir" >/dev/null 2>"$WORK/build.err" || { cat "$WORK/build.err" >&2; exit 1; }
  done
}

slim_rootfs() {  # slim_rootfs DIR: drop what a container never reads (docs but copyrights, man, locales)
  find "$1/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$1/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/usr/share/locale/*
  : >"$1/etc/resolv.conf"
}

build_runtime_base() {
  # The Dockerfile's BASE on a machine without a registry: what python:3.11-slim-bookworm gives
  # (Python 3.11 with venv) plus git and openssh-client, which the Dockerfile would otherwise
  # apt-get install.
  local image=promisebot/runtime-base:latest
  if present "$image"; then log "$image present"; return; fi
  import_debootstrap "$image" runtime python3,python3-venv,git,openssh-client,ca-certificates '["python3"]'
}

build_redis() {
  # Debian's redis-server, laid out like the official redis image: data in /data (a volume),
  # run as the redis user. Protected mode is off, as in the official image (it would refuse
  # every client but loopback): publish the port only on purpose, or set a password.
  local image=promisebot/redis:latest
  if present "$image"; then log "$image present"; return; fi
  local base root="$WORK/redis" ids
  base=$(debootstrap_cached redis redis-server)
  mkdir -p "$root"
  tar -C "$root" --numeric-owner -xf "$base"
  ids=$(awk -F: '$1 == "redis" {print $3 ":" $4}' "$root/etc/passwd")
  [[ -n $ids ]] || { log "no redis user in the redis rootfs"; exit 1; }
  mkdir -p "$root/data"
  chown "$ids" "$root/data"
  import_rootfs "$image" "$root" 'ENV LANG=C.UTF-8' 'VOLUME /data' 'WORKDIR /data' 'USER redis' 'EXPOSE 6379' \
    'CMD ["redis-server", "--protected-mode", "no"]'
}

APP_FILES=(Dockerfile requirements.lock pyproject.toml README.md bot runners config/defaults.yaml
           scripts/container-healthcheck.py)

app_context_hash() {
  # A stable hash of what the promisebot image is built from (its build context but the wheels,
  # which requirements.lock pins by hash) and of how (this script).
  (cd "$ROOT" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
      --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - "${APP_FILES[@]}" \
      scripts/build-images.sh) | sha256sum | cut -c1-16
}

wheelhouse() {
  # Prints a directory holding a wheel of every package of requirements.lock (hash-checked) and
  # setuptools, for Python 3.11 on Linux of this machine's architecture, made on the host with
  # the host's pip and network settings (an HTTPS proxy's CA included) and cached per lock.
  # The Dockerfile's build stage then installs from it with no index: a container need not
  # reach PyPI.
  local lock_hash dir pip arch
  lock_hash=$(sha256sum "$ROOT/requirements.lock" | cut -c1-16)
  dir="$CACHE/wheelhouse-py311-$lock_hash"
  if [[ -f "$dir/.complete" && $FORCE == 0 ]]; then echo "$dir"; return; fi
  pip="$ROOT/.venv/bin/pip"
  if [[ ! -x $pip ]]; then python3 -m venv "$WORK/pip" && pip="$WORK/pip/bin/pip"; fi
  arch=$(uname -m)
  rm -rf "$dir" && mkdir -p "$dir"
  log "downloading the wheels of requirements.lock for the image (Python 3.11, $arch); once per lock"
  # Debian bookworm's glibc is 2.36: any manylinux wheel up to that (pip does not expand one
  # --platform to the older ones itself).
  local target=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 --no-deps -d "$dir") v
  for v in $(seq 36 -1 5); do target+=(--platform "manylinux_2_${v}_$arch"); done
  target+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
  env -u PIP_FIND_LINKS "$pip" download -q "${target[@]}" --require-hashes -r "$ROOT/requirements.lock" \
    >"$WORK/wheels.log" 2>&1 || { cat "$WORK/wheels.log" >&2; exit 1; }
  # What the lock pins behind a marker pip evaluates here for a "3.11" that the base's Python
  # (bookworm's 3.11.2) answers otherwise: async-timeout (python_full_version < "3.11.3").
  local marked
  marked=$(sed -n 's/^\(async-timeout==[^ ;]*\).*/\1/p' "$ROOT/requirements.lock")
  env -u PIP_FIND_LINKS "$pip" download -q "${target[@]}" "setuptools>=77" $marked \
    >"$WORK/wheels.log" 2>&1 || { cat "$WORK/wheels.log" >&2; exit 1; }
  touch "$dir/.complete"
  echo "$dir"
}

build_app() {
  # The promisebot image from the Dockerfile at the root, FROM promisebot/runtime-base, its
  # wheels from the host (wheelhouse above, in a build context assembled here); rebuilt when
  # its context changed (the classic builder's cache keeps the wheels layer while
  # requirements.lock is unchanged).
  local image=promisebot/promisebot:latest hash have version revision wheels ctx="$WORK/app"
  hash=$(app_context_hash)
  have=$(docker image inspect -f '{{index .Config.Labels "promisebot.context-hash"}}' "$image" 2>/dev/null || true)
  if [[ $FORCE == 0 && "$have" == "$hash" ]]; then log "$image present"; return; fi
  wheels=$(wheelhouse)
  mkdir -p "$ctx"
  (cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - "${APP_FILES[@]}") \
    | tar -C "$ctx" -xf -
  cp -r "$wheels" "$ctx/wheelhouse"
  rm -f "$ctx/wheelhouse/.complete"
  version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -1)
  revision=$(git -C "$ROOT" rev-parse --verify -q HEAD 2>/dev/null || true)
  log "building $image (version $version)"
  local before after
  before=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  docker build -q --force-rm --build-arg BASE=promisebot/runtime-base:latest --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" --label "promisebot.context-hash=$hash" \
    -t "$image" -t "promisebot/promisebot:$version" "$ctx" >/dev/null 2>"$WORK/build.err" \
    || { cat "$WORK/build.err" >&2; exit 1; }
  rm -rf "$ctx"
  # The image it replaces, unless a container still uses it (rebuilt at each source change).
  after=$(docker image inspect -f '{{.Id}}' "$image")
  if [[ -n $before && $before != "$after" ]]; then docker rmi "$before" >/dev/null 2>&1 || true; fi
}

build_busybox
build_python
build_kubectl
build_examples
if [[ $DEPLOY == 1 ]]; then
  build_runtime_base
  build_redis
  build_app
fi
