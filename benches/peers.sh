#!/usr/bin/env bash
# cdnsync and the peers side by side on one local S3 server, one run
# (docs/performance.md has the results and how to read them).
#
#   benches/peers.sh                                    # rclone serve s3, default corpora
#   benches/peers.sh --server s3s                       # s3s-fs
#   benches/peers.sh --corpora synth-large --tools s5cmd,rclone,cdnsync --runs 3
#
# Installs the peers and corpora with ../shared/bench/setup.sh (PEERS, default
# ~/.cache/cdnsync-peers), builds the release binaries of cdnsync and of the
# counting proxy, then runs benches/peers.py (the shared harness + the proxy).
# Extra arguments go to the harness (see ../shared/bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${CDNSYNC_SHARED_DIR:-$PWD/../shared}/bench"
export PEERS="${PEERS:-$HOME/.cache/cdnsync-peers}"
"$SHARED/setup.sh" >&2
cargo build --release --quiet --features dev-tools --bins
args=("$@")
if [[ " $* " != *" --tools "* ]]; then
  args+=(--tools aws,s5cmd,rclone,s3cmd,hugo,cdnsync)
  [[ " $* " == *" --server s3s "* ]] && args[-1]=aws,s5cmd,rclone,hugo,cdnsync   # s3cmd cannot list s3s-fs
fi
CDNSYNC_SHARED_BENCH="$SHARED" exec python3 benches/peers.py --peers "$PEERS" \
  --cdnsync "$PWD/target/release/cdnsync" --proxy "$PWD/target/release/cdnsync-proxy" "${args[@]}"
