#!/usr/bin/env bash
# Builds the container images from this checkout alone (no registry, no base image):
#   shoal:dev          shoald + the shoal tool (also `shoal interlock`) + shoal-probe, FROM scratch
#                      (deploy/Dockerfile)
#   shoal-counter:dev  the counter demo + shoal-probe, FROM scratch          (examples/counter/Dockerfile)
#
# Release binaries are built on the host by cargo, stripped, and staged with exactly the shared
# libraries `ldd` lists, the dynamic loader, glibc's NSS modules for files and DNS (so names like
# `db` resolve through /etc/hosts and Docker's resolver), /etc/nsswitch.conf, and /etc/passwd and
# /etc/group naming the non-root user `shoal` (uid/gid 10001) the images run as.
#
#   deploy/build-images.sh            build both images
#   SKIP_CARGO=1 deploy/build-images.sh   reuse binaries already built (CARGO_TARGET_DIR/release)
#   TAG=x deploy/build-images.sh      tag shoal:x and shoal-counter:x instead of :dev
#   deploy/build-images.sh --with-haproxy   also shoal-haproxy:dev for deploy/compose.prod.yaml
#                                     (deploy/haproxy/build-image.sh: Debian's haproxy package,
#                                     debootstrapped once and cached under CARGO_TARGET_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
with_haproxy=0
for arg in "$@"; do
  case "$arg" in
    --with-haproxy) with_haproxy=1 ;;
    *) echo "usage: deploy/build-images.sh [--with-haproxy]" >&2; exit 2 ;;
  esac
done
repo=$PWD
target_dir=${CARGO_TARGET_DIR:-$repo/target}
release=$target_dir/release
tag=${TAG:-dev}

if [ "${SKIP_CARGO:-0}" != "1" ]; then
  echo "==> cargo build --release (shoald, shoal, shoal-probe, counter)"
  cargo build --release --bin shoald --bin shoal --bin shoal-probe --bin counter
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/shoal-images.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# copy_with_parents FILE ROOT: FILE (symlinks resolved) at the same path under ROOT.
copy_with_parents() {
  local file=$1 root=$2
  mkdir -p "$root$(dirname "$file")"
  cp -L "$file" "$root$file"
}

# libraries_of FILE...: every shared library and loader the files need, one path a line.
libraries_of() {
  ldd "$@" 2>/dev/null | awk '
    /=> \// { print $3 }          # libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)
    /^\t\// { print $1 }          # /lib64/ld-linux-x86-64.so.2 (0x...)
  ' | sort -u
}

# make_root ROOT BINARY...: a minimal root filesystem that runs the binaries.
make_root() {
  local root=$1
  shift
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  local bin
  for bin in "$@"; do
    [ -x "$release/$bin" ] || { echo "missing $release/$bin (build it, or unset SKIP_CARGO)" >&2; exit 1; }
    strip --strip-all -o "$root/usr/local/bin/$bin" "$release/$bin"
  done
  # glibc loads the NSS modules with dlopen, so ldd of the binaries does not list them. Since
  # glibc 2.34 `files` and `dns` live inside libc itself; the modules are copied anyway so the
  # image also works when built on an older glibc.
  local nss=()
  local lib
  for lib in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    for dir in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64 /lib /usr/lib; do
      if [ -e "$dir/$lib" ]; then nss+=("$dir/$lib"); break; fi
    done
  done
  for lib in $(libraries_of "$root"/usr/local/bin/* "${nss[@]}") "${nss[@]}"; do
    copy_with_parents "$lib" "$root"
  done
  cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
shoal:x:10001:10001:shoal:/var/lib/shoal:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
  cat > "$root/etc/group" <<'GROUP'
root:x:0:
shoal:x:10001:
nogroup:x:65534:
GROUP
  cat > "$root/etc/nsswitch.conf" <<'NSS'
passwd: files
group:  files
hosts:  files dns
NSS
}

echo "==> staging shoal:$tag"
mkdir -p "$stage/shoal/data"
make_root "$stage/shoal/rootfs" shoald shoal shoal-probe
cp deploy/shoal.toml "$stage/shoal/shoal.toml"
echo "==> staging shoal-counter:$tag"
make_root "$stage/counter/rootfs" counter shoal-probe

echo "==> docker build"
docker build -q -t "shoal:$tag" -f deploy/Dockerfile "$stage/shoal"
docker build -q -t "shoal-counter:$tag" -f examples/counter/Dockerfile "$stage/counter"

if [ "$with_haproxy" = "1" ]; then
  TAG=$tag deploy/haproxy/build-image.sh
fi

echo "==> images"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
  | grep -E "^(shoal|shoal-counter|shoal-haproxy):$tag " || true
