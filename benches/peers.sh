#!/usr/bin/env bash
# The peer benchmark's entry point: cdnsync against aws s3 sync, s5cmd, rclone,
# s3cmd and hugo deploy on one local S3 server, same corpora, same counting
# proxy (docs/performance.md explains the results). It exists so anyone can
# reproduce those numbers from a clone of this repository alone.
#
#   benches/peers.sh                                  # rclone serve s3, vite + synth-small + synth-large
#   benches/peers.sh --server s3s --corpora vite,synth-small --runs 1 --latency-ms 0,30
#   benches/peers.sh --corpora synth-large --tools s5cmd,rclone,cdnsync --scenarios noop,change
#
# Options (all passed on to benches/harness.py, see `python3 benches/harness.py --help`):
#   --server rclone|s3s|moto   --corpora a,b   --tools a,b   --scenarios cold,noop,touch,change
#   --runs N   --latency-ms N[,N...] (one table per value)   --out DIR   --tool NAME=TEMPLATE
# Options of this script only:
#   --build      build the release binaries when missing or older than the sources
#   --no-setup   skip benches/setup.sh (it is idempotent and takes seconds once done)
#
# Steps: benches/setup.sh installs the peers, servers and corpora into $PEERS
# (default ~/.cache/cdnsync-peers); the release binaries target/release/cdnsync
# and cdnsync-proxy (the counting proxy, feature dev-tools) must exist; then the
# harness runs and prints the tables (also in PEERS/results/TIME/ unless --out).
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERS="${PEERS:-$HOME/.cache/cdnsync-peers}"
BUILD=(cargo build --release --features dev-tools --bins)

build=0 setup=1 args=() corpora=""
while (($#)); do
  case "$1" in
    --build) build=1 ;;
    --no-setup) setup=0 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    --corpora) corpora="${2:-}"; args+=("$1" "${2:-}"); shift ;;
    --corpora=*) corpora="${1#*=}"; args+=("$1") ;;
    *) args+=("$1") ;;
  esac
  shift
done

if ((setup)); then
  setup_args=()
  [[ ",$corpora," == *",synth-100k,"* ]] && setup_args+=(--with-100k)
  # A failed step (say s3s-fs without cargo) need not stop a run that does not use it:
  # the harness checks every server, tool and corpus it is asked for and names what is missing.
  benches/setup.sh "${setup_args[@]}" \
    || echo "peers.sh: benches/setup.sh could not install everything (see above); going on" >&2
fi

bins=(target/release/cdnsync target/release/cdnsync-proxy)
missing=() stale=()
for b in "${bins[@]}"; do
  if [[ ! -x "$b" ]]; then
    missing+=("$b")
  elif [[ -n "$(find src tools Cargo.toml Cargo.lock -newer "$b" -type f -print -quit 2>/dev/null)" ]]; then
    stale+=("$b")
  fi
done
if ((build)) && ((${#missing[@]} + ${#stale[@]})); then
  echo "peers.sh: ${BUILD[*]}" >&2
  "${BUILD[@]}"
elif ((${#missing[@]})); then
  echo "peers.sh: missing ${missing[*]}; build them first:" >&2
  echo "    ${BUILD[*]}" >&2
  echo "(or run benches/peers.sh --build)" >&2
  exit 1
elif ((${#stale[@]})); then
  echo "peers.sh: warning: ${stale[*]} older than the sources; rebuild with: ${BUILD[*]} (or --build)" >&2
fi

exec python3 benches/harness.py --peers "$PEERS" --cdnsync "$PWD/target/release/cdnsync" \
  --proxy "$PWD/target/release/cdnsync-proxy" "${args[@]}"
