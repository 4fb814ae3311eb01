#!/usr/bin/env bash
# Two cdnsync binaries side by side on the generated site, each run against a
# fresh s3s-fs bucket (same server build, same disk), alternating A and B so
# machine noise hits both: cold publish, no-op republish, 1 % changed. Prints
# the median of RUNS rounds and the ratio B/A. Used to show a change does not
# regress (e.g. the issue-17 redesign: "within 5 %").
#
#   benches/compare.sh OLD_BIN NEW_BIN [FILES=10000] [RUNS=3] [NOOPS=1]
#
# NOOPS > 1 times the no-op that many times per round (it changes nothing,
# so every repeat measures the same work): a tighter median where the
# no-op is what is being compared.
set -euo pipefail
cd "$(dirname "$0")/.."
A="$(realpath "$1")"; B="$(realpath "$2")"; FILES="${3:-10000}"; RUNS="${4:-3}"; NOOPS="${5:-1}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-compare.XXXXXX")"
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT
TE="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}"
S3S="$TE/s3s/bin/s3s-fs"; PY="$TE/venv/bin/python"
[ -x "$S3S" ] && [ -x "$PY" ] || { echo "run scripts/test.sh once first (installs s3s-fs and the venv)" >&2; exit 1; }
python3 tests/fixtures/gen_site.py gen "$WORK/site" --files "$FILES" >/dev/null
echo "site: $FILES files, $(du -sh "$WORK/site" | cut -f1); A=$A B=$B; $RUNS rounds, $NOOPS no-op(s) each"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
fresh_server() { # -> sets ENDPOINT
  local p d; p="$(port)"; d="$(mktemp -d "$WORK/s3s.XXXX")"
  RUST_LOG=error "$S3S" --host 127.0.0.1 --port "$p" --access-key k --secret-key s "$d" >/dev/null 2>&1 &
  PIDS="$PIDS $!"; LAST_PID=$!
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  ENDPOINT="http://127.0.0.1:$p"
  "$PY" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='k', aws_secret_access_key='s', region_name='us-east-1').create_bucket(Bucket='bench')" "$ENDPOINT"
}
timed() { # bin -> seconds
  local s e; s=$(date +%s.%N)
  AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s AWS_REGION=us-east-1 \
    "$1" publish "$WORK/run" --to s3://bench --endpoint-url "$ENDPOINT" --sse none --json >/dev/null 2>"$WORK/err" \
    || { cat "$WORK/err" >&2; exit 1; }
  e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"
}
declare -A T
for r in $(seq "$RUNS"); do
  for who in A B; do
    bin="${!who}"; rm -rf "$WORK/run"; cp -r "$WORK/site" "$WORK/run"
    fresh_server
    T[$who,cold]+="$(timed "$bin") "
    for _ in $(seq "$NOOPS"); do T[$who,noop]+="$(timed "$bin") "; done
    python3 tests/fixtures/gen_site.py mutate "$WORK/run" --fraction 0.01 >/dev/null
    T[$who,change]+="$(timed "$bin") "
    kill "$LAST_PID" 2>/dev/null || true
  done
done
med() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float,sys.argv[1:])):.2f}')" $1; }
printf '%-10s %9s %9s %7s\n' scenario A B B/A
for s in cold noop change; do
  a=$(med "${T[A,$s]}"); b=$(med "${T[B,$s]}")
  printf '%-10s %8ss %8ss %7s\n' "$s" "$a" "$b" "$(python3 -c "print(f'{$b/$a:.3f}')")"
done
