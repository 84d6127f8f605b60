#!/usr/bin/env bash
# Checks that deploy/Dockerfile's runtime stage installs the Debian package of every
# shared library the ferry binary links directly (readelf NEEDED), so the image does
# not fail at start with "error while loading shared libraries" after a new dependency.
# usage: check_docker_libs.sh DOCKERFILE FERRY_BINARY
set -u
dockerfile="$1"; bin="$2"
if [ ! -x "$bin" ]; then echo "SKIPPED: $bin is not built"; exit 77; fi
# Packages every Debian image has (priority required), so the Dockerfile need not list them.
base=" libc6 libstdc++6 libgcc-s1 zlib1g libzstd1 liblzma5 libbz2-1.0 libcrypt1 "
runtime=$(sed -n '/^FROM .* AS runtime/,$p' "$dockerfile")
rc=0
while read -r soname; do
  path=$(ldd "$bin" | awk -v s="$soname" '$1 == s {print $3}')
  if [ -z "$path" ]; then echo "FAIL: $soname not found by ldd"; rc=1; continue; fi
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
  if [ -z "$pkg" ]; then echo "FAIL: no package owns $path ($soname)"; rc=1; continue; fi
  case "$base" in *" $pkg "*) echo "ok: $soname ($pkg, in the base image)"; continue;; esac
  if grep -qw -- "$pkg" <<<"$runtime"; then
    echo "ok: $soname ($pkg)"
  else
    echo "FAIL: $soname comes from $pkg, which the runtime stage of $dockerfile does not install"
    rc=1
  fi
done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
         grep -Ev '^lib(asan|ubsan|tsan|lsan)\.so')  # sanitizer builds are not shipped
exit $rc
