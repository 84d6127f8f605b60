#!/usr/bin/env bash
# need.sh TOOL CMD ARGS...: runs CMD when TOOL is installed. Otherwise the check fails
# (CI installs every tool with scripts/install-deps.sh --test, so a missing one is a broken
# setup, not a reason to pass), unless FERRY_ALLOW_SKIP=1: then it exits 77, which ctest
# reports as skipped (SKIP_RETURN_CODE).
tool="$1"; shift
if ! command -v "$tool" >/dev/null 2>&1; then
  if [ "${FERRY_ALLOW_SKIP:-0}" = 1 ]; then
    echo "SKIPPED: $tool is not installed (scripts/install-deps.sh --test installs it)"
    exit 77
  fi
  echo "FAILED: $tool is not installed (scripts/install-deps.sh --test installs it;" \
    "FERRY_ALLOW_SKIP=1 skips instead)"
  exit 1
fi
exec "$@"
