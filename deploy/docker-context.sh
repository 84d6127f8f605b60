#!/usr/bin/env bash
# Gathers a Docker build context for deploy/Dockerfile from binaries built on this host:
#   deploy/docker-context.sh [--bare] OUTDIR BINARY...
# OUTDIR/Dockerfile is deploy/Dockerfile. OUTDIR/data/ is the empty data dir (copied owned
# by ferry: COPY cannot change the owner of a folder another COPY made). OUTDIR/rootfs/
# holds each BINARY at /usr/local/bin/<name> (stripped of debug info), every shared
# library it links (as ldd lists them, at the same paths), CA certificates and time zones
# when the host has them, and /etc/passwd and /etc/group naming the unprivileged user
# ferry (uid/gid 10001). No compiler and no base image from a registry: FROM scratch.
#   deploy/docker-context.sh /tmp/ferry-ctx build/src/cli/ferry && docker build -t ferry /tmp/ferry-ctx
# OUTDIR/rootfs alone is a root file system for `docker import` (the e2e tests run the demo
# app that way); --bare leaves out the certificates and time zones such an app image does
# not need.
set -euo pipefail
bare=0
if [ "${1:-}" = "--bare" ]; then bare=1; shift; fi
if [ $# -lt 2 ]; then
  echo "usage: $0 [--bare] OUTDIR BINARY..." >&2
  exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out"
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/etc" "$out/rootfs/tmp" "$out/rootfs/etc/ferry" \
  "$out/data"
chmod 1777 "$out/rootfs/tmp"
cp "$here/Dockerfile" "$out/Dockerfile"
copy_lib() {  # the file a path names, at that path
  local p=$1
  [ -e "$p" ] || return 0
  mkdir -p "$out/rootfs$(dirname "$p")"
  cp -L "$p" "$out/rootfs$p"
}
for bin in "$@"; do
  [ -x "$bin" ] || { echo "$0: $bin is not an executable file" >&2; exit 1; }
  dest="$out/rootfs/usr/local/bin/$(basename "$bin")"
  cp -L "$bin" "$dest"
  # Debug info stays on the host: the image is a fraction of the size (and quicker to build).
  if command -v strip >/dev/null; then strip --strip-debug "$dest"; fi
  # "libx.so => /lib/.../libx.so.1 (0x…)" and "/lib64/ld-linux-x86-64.so.2 (0x…)"
  while read -r lib; do copy_lib "$lib"; done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
if [ $bare = 0 ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  copy_lib /etc/ssl/certs/ca-certificates.crt
fi
if [ $bare = 0 ] && [ -d /usr/share/zoneinfo ]; then
  mkdir -p "$out/rootfs/usr/share"
  cp -rL /usr/share/zoneinfo "$out/rootfs/usr/share/zoneinfo" 2>/dev/null || true
fi
printf 'root:x:0:0:root:/root:/sbin/nologin\nferry:x:10001:10001:ferry:/var/lib/ferry:/sbin/nologin\n' \
  > "$out/rootfs/etc/passwd"
printf 'root:x:0:\nferry:x:10001:\n' > "$out/rootfs/etc/group"
