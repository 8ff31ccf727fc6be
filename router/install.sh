#!/usr/bin/env bash
# Installs the pinned router binaries, skipping any already installed at the pinned version.
#
#   router/install.sh [hive|apollo|all]     (default: all)
#
# Binaries go to $CP_TOOLS/bin (default ~/.cache/control-plane/tools/bin), outside the clone, so CI and
# repeated runs reuse them. Both routers build in one target folder ($CP_TOOLS/router-build), so the
# dependencies they share (tokio, hyper, serde, …) compile once.
#
# CP_ROUTER_PROFILE picks the optimisation:
#   fast-build (default)  opt-level 1: the routers this script builds serve tests and a dev stack; both build
#                         in about 28 minutes on 2 cores instead of 38 (BENCHMARKS.md, "CI on a fresh
#                         machine"; what it costs their latency is not measured yet);
#   release               Cargo's release profile (opt-level 3), for a machine that serves real traffic.
# A router built with the other profile is rebuilt.
set -euo pipefail

TOOLS="${CP_TOOLS:-$HOME/.cache/control-plane/tools}"
HIVE_VERSION=0.2.19     # 0.3.x needs a newer compiler than the workspace's 1.95
APOLLO_VERSION=2.17.0
PROFILE="${CP_ROUTER_PROFILE:-fast-build}"
case "$PROFILE" in
  fast-build) export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 ;;
  release) ;;
  *) echo "CP_ROUTER_PROFILE must be fast-build or release, not $PROFILE" >&2; exit 2 ;;
esac
# The profile is part of what is installed: cargo install --list does not show it, so a marker beside the
# binary does.
marker() { echo "$TOOLS/bin/.$1.profile"; }

installed() { # name version
  cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^$1 v$2:" \
    && [ "$(cat "$(marker "$1")" 2>/dev/null)" = "$PROFILE" ]
}

build() { # name version [cargo install flags…]
  local name=$1 version=$2 started=$SECONDS
  shift 2
  echo "building $name $version ($PROFILE profile; about 14 minutes on 2 cores)…"
  cargo install "$name" --version "$version" --locked --force --root "$TOOLS" \
    --target-dir "$TOOLS/router-build" "$@"
  echo "$PROFILE" >"$(marker "$name")"
  echo "$name $version built in $((SECONDS - started)) s"
}

install_hive() {
  if installed hive-router "$HIVE_VERSION"; then
    echo "hive-router $HIVE_VERSION already installed"
    return
  fi
  # Without `graphiql` its build script asks npm for a package version that is no longer served.
  build hive-router "$HIVE_VERSION" --features graphiql
}

install_apollo() {
  if installed apollo-router "$APOLLO_VERSION"; then
    echo "apollo-router $APOLLO_VERSION already installed"
    return
  fi
  if ! command -v protoc >/dev/null; then
    echo "installing protoc (Debian's protobuf-compiler), which Apollo Router's build needs…"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq protobuf-compiler
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler
    fi
  fi
  build apollo-router "$APOLLO_VERSION"
}

case "${1:-all}" in
  hive) install_hive ;;
  apollo) install_apollo ;;
  all) install_hive; install_apollo ;;
  *) echo "usage: $0 [hive|apollo|all]" >&2; exit 2 ;;
esac
