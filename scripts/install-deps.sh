#!/usr/bin/env bash
# Installs everything ferry needs to build and test on Debian bookworm.
# Usage: scripts/install-deps.sh [--test|--demo]   (--test adds the real servers the tests
# start; --demo what scripts/demo.sh uses besides the build)
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
build_pkgs=(build-essential cmake ninja-build ccache pkg-config
  libboost-dev libboost-system-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libsqlite3-dev libpq-dev libssl-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libtomlplusplus-dev libvectorscan-dev
  libre2-dev libgit2-dev libcurl4-openssl-dev libnghttp2-dev tzdata)
# The test build (scripts/test.sh) is clang-16 with sanitizers and libFuzzer, linked by mold;
# llvm brings llvm-symbolizer, which turns the addresses of a sanitizer report into lines.
# postgresql: the store tests start their own cluster (initdb, postgres) as ferry-app.
# pebble: the ACME tests start pebble and pebble-challtestsrv on loopback (tests/acme).
# nghttp2-client: the router's HTTP/2 tests and bench drive it with nghttp and h2load.
# haproxy, nginx: the edge e2e tests run the real ones on loopback (tests/e2e/edge_lb_e2e_test).
test_pkgs=(clang-16 libclang-rt-16-dev llvm mold curl python3 python3-yaml procps iproute2 git prometheus prometheus-alertmanager systemd chromium nodejs postgresql docker.io haproxy nginx pebble nghttp2-client $(command -v npm >/dev/null || echo npm))  # npm: Debian's, unless nodejs already brings one
want=("${build_pkgs[@]}")
demo_pkgs=(curl python3)  # scripts/demo.sh: health polling, JSON
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi
if [ "${1:-}" = "--demo" ]; then want+=("${demo_pkgs[@]}"); fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#want[@]} packages present"
fi
# Instances and hooks of a root agent/server run as this system user (docs/operations.md):
# app code must not read the data dir (keys, store, tokens).
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--demo" ] || [ "${FERRY_APP_USER:-}" = "create" ]; then
  if ! id ferry-app >/dev/null 2>&1; then
    $SUDO useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ferry-app
    echo "install-deps: created system user ferry-app"
  fi
fi
