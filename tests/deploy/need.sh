#!/usr/bin/env bash
# need.sh TOOL CMD ARGS...: runs CMD when TOOL is installed; otherwise says so and exits
# 77, which ctest reports as skipped (SKIP_RETURN_CODE). CI installs every tool with
# scripts/install-deps.sh --test, so there the checks run.
tool="$1"; shift
if ! command -v "$tool" >/dev/null 2>&1; then
  echo "SKIPPED: $tool is not installed (scripts/install-deps.sh --test installs it)"
  exit 77
fi
exec "$@"
