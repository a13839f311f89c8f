#!/usr/bin/env bash
# Builds shoal-haproxy:TAG, the load balancer of deploy/compose.prod.yaml, from this repo's files
# and Debian's package mirror alone (no registry, no base image):
#
#   1. debootstrap a minimal Debian (bookworm, variant minbase) with the `haproxy` package into a
#      directory, drop what a container never uses (docs, man pages, locales, apt lists), and
#      keep it as a tarball under CARGO_TARGET_DIR/haproxy/ (so a rerun skips the download);
#   2. `docker import` the tarball as shoal-haproxy-base:TAG;
#   3. `docker build` deploy/haproxy/Dockerfile on top of it (haproxy.cfg, user, ports, healthcheck).
#
#   deploy/haproxy/build-image.sh              build shoal-haproxy:dev (needs root for debootstrap
#                                              on the first run, and network to the mirror)
#   REFRESH=1 deploy/haproxy/build-image.sh    debootstrap again even if the tarball is cached
#   MIRROR=http://... SUITE=bookworm TAG=x     other mirror, suite or tag
#
# Exit status 3 means the root filesystem could not be made (no debootstrap, not root, or no
# network to the mirror), so callers can SKIP rather than fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
tag=${TAG:-dev}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
cache_dir=${CARGO_TARGET_DIR:-$repo/target}/haproxy
tarball=$cache_dir/rootfs-$suite-haproxy.tar

work=""
build_log=""
cleanup() {
  local rc=$?
  [ -z "$build_log" ] || rm -f "$build_log"
  if [ -n "$work" ]; then
    # Unmount anything debootstrap left mounted before deleting the tree.
    for m in proc sys dev/pts dev; do
      umount "$work/rootfs/$m" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

if [ ! -s "$tarball" ] || [ "${REFRESH:-0}" = "1" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "cannot build the HAProxy root filesystem: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 3
  fi
  if [ "$(id -u)" != "0" ]; then
    echo "cannot build the HAProxy root filesystem: debootstrap needs root" >&2
    exit 3
  fi
  mkdir -p "$cache_dir"
  work=$(mktemp -d "$cache_dir/build.XXXXXX")
  echo "==> debootstrap $suite (minbase + haproxy) from $mirror"
  if ! debootstrap --variant=minbase --include=haproxy "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log" >&2
    echo "cannot build the HAProxy root filesystem: debootstrap failed (network to $mirror?)" >&2
    exit 3
  fi
  root=$work/rootfs
  for m in proc sys dev/pts dev; do
    umount "$root/$m" >/dev/null 2>&1 || true
  done
  # What a container never reads. apt and dpkg stay, so the image can still be inspected with
  # `dpkg -l`, but their caches and lists go.
  rm -rf "${root:?}"/usr/share/doc/* "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/* \
    "${root:?}"/usr/share/locale/* "${root:?}"/var/cache/apt/* "${root:?}"/var/lib/apt/lists/* \
    "${root:?}"/var/cache/debconf/*-old "${root:?}"/var/log/* "${root:?}"/tmp/* "${root:?}"/dev/*
  # Docker provides /etc/resolv.conf, /etc/hosts and /etc/hostname at run time.
  : >"$root/etc/resolv.conf"
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  echo "==> cached $tarball ($(du -h "$tarball" | cut -f1))"
else
  echo "==> reusing $tarball (REFRESH=1 to debootstrap again)"
fi

# Read the whole status file first: awk leaving early would kill tar with SIGPIPE (pipefail).
dpkg_status=$(tar -xOf "$tarball" ./var/lib/dpkg/status)
haproxy_version=$(awk '/^Package: haproxy$/ { p = 1 } p && /^Version:/ { print $2; exit }' <<<"$dpkg_status")
# The base image carries the tarball's size and time as a label; a rerun with the same tarball
# skips the import (which would leave the previous base image dangling).
stamp=$(stat -c '%s-%Y' "$tarball")
have=$(docker image inspect -f '{{index .Config.Labels "shoal.rootfs"}}' "shoal-haproxy-base:$tag" 2>/dev/null || true)
if [ "$have" != "$stamp" ]; then
  echo "==> docker import shoal-haproxy-base:$tag (haproxy $haproxy_version)"
  old_base=$(docker image inspect -f '{{.Id}}' "shoal-haproxy-base:$tag" 2>/dev/null || true)
  old_image=$(docker image inspect -f '{{.Id}}' "shoal-haproxy:$tag" 2>/dev/null || true)
  docker import --change "LABEL shoal.rootfs=$stamp" "$tarball" "shoal-haproxy-base:$tag" >/dev/null
else
  echo "==> shoal-haproxy-base:$tag is up to date (haproxy $haproxy_version)"
fi
echo "==> docker build shoal-haproxy:$tag"
build_log=$(mktemp "${TMPDIR:-/tmp}/shoal-haproxy-build.XXXXXX")
docker build -q --build-arg "BASE=shoal-haproxy-base:$tag" \
  --label "org.opencontainers.image.version=$haproxy_version" \
  -t "shoal-haproxy:$tag" deploy/haproxy >/dev/null 2>"$build_log" || { cat "$build_log" >&2; exit 1; }
# The images this build replaced, if nothing else uses them (docker refuses otherwise).
for id in ${old_image:-} ${old_base:-}; do
  docker rmi "$id" >/dev/null 2>&1 || true
done
images=$(docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}')
grep -E "^shoal-haproxy:$tag " <<<"$images" || true
