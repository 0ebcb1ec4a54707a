#!/usr/bin/env bash
# Build the local images promisebot's tests and examples run. Nothing is pulled.
#
#   promisebot/busybox:latest   FROM scratch + Debian's static busybox and its applet links
#   promisebot/python:latest    debootstrap'd Debian bookworm (minbase) + python3 + kratix-sdk
#   promisebot-examples/<name>:v1   every config/examples/images/<name>/Dockerfile (base first)
#
# Idempotent: an image already present is skipped (examples: unless their build context
# changed) unless --force is given. The debootstrap rootfs is cached as a tarball under
# ${XDG_CACHE_HOME:-~/.cache}/promisebot/ so it is made once per machine.
set -euo pipefail

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build-images.sh: unknown argument $arg (use --force)" >&2; exit 2 ;;
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

debootstrap_rootfs() {
  # Prints the path of the cached minbase rootfs tarball, making it if needed.
  local tarball="$CACHE/bookworm-minbase-python3.tar"
  if [[ -s "$tarball" && $FORCE == 0 ]]; then echo "$tarball"; return; fi
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  local dir="$WORK/debootstrap"
  log "debootstrap bookworm (minbase + python3) from $MIRROR; once per machine"
  debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$dir" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"
  echo "$tarball"
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
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/root/.cache
  : >"$root/etc/resolv.conf"
  log "importing $image"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'CMD ["python3"]' - "$image" >/dev/null
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

build_busybox
build_python
build_examples
