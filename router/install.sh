#!/usr/bin/env bash
# Installs the pinned router binaries, skipping any already installed at the pinned version.
#
#   router/install.sh [hive|apollo|all]     (default: all)
#
# Binaries go to $CP_TOOLS/bin (default ~/.cache/control-plane/tools/bin), outside the clone, so CI and
# repeated runs reuse them. Building from source takes about 15 minutes per router on 2 cores.
set -euo pipefail

TOOLS="${CP_TOOLS:-$HOME/.cache/control-plane/tools}"
HIVE_VERSION=0.2.19     # 0.3.x needs a newer compiler than the workspace's 1.95
APOLLO_VERSION=2.17.0

installed() { # name version
  cargo install --list --root "$TOOLS" 2>/dev/null | grep -q "^$1 v$2:"
}

install_hive() {
  if installed hive-router "$HIVE_VERSION"; then
    echo "hive-router $HIVE_VERSION already installed"
    return
  fi
  echo "installing hive-router $HIVE_VERSION (about 15 minutes)…"
  # Without `graphiql` its build script asks npm for a package version that is no longer served.
  cargo install hive-router --version "$HIVE_VERSION" --locked --features graphiql --root "$TOOLS"
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
  echo "installing apollo-router $APOLLO_VERSION (about 15 minutes)…"
  cargo install apollo-router --version "$APOLLO_VERSION" --locked --root "$TOOLS"
}

case "${1:-all}" in
  hive) install_hive ;;
  apollo) install_apollo ;;
  all) install_hive; install_apollo ;;
  *) echo "usage: $0 [hive|apollo|all]" >&2; exit 2 ;;
esac
