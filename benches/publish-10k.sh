#!/usr/bin/env bash
# Wall time and upload counts of cold / no-op / touch-all / 1%-changed publishes
# of the generated 10,000-file site (tests/fixtures/gen_site.py) against the
# local test servers (moto and s3s-fs, from scripts/test-env.sh) and a local
# directory target. Uses the release binary.
#
#   benches/publish-10k.sh [FILES]        # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-10000}"
GEN="${GEN_SITE:-tests/fixtures/gen_site.py}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN="$PWD/target/release/cdnsync"
source scripts/test-env.sh

python3 "$GEN" gen "$WORK/site" --files "$FILES" >/dev/null
echo "site: $FILES files, $(du -sh "$WORK/site" | cut -f1)"

PY="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}/venv/bin/python"
mkbucket() { # endpoint key secret bucket
  "$PY" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name='us-east-1').create_bucket(Bucket=sys.argv[4])" "$@"
}

run() { # label target extra-args...
  local label=$1 target=$2; shift 2
  local out
  out=$(/usr/bin/time -f '%e %M' -o "$WORK/time" "$BIN" publish "$WORK/site" --to "$target" --json "$@" 2>"$WORK/stderr") \
    || { cat "$WORK/stderr"; exit 1; }
  read -r wall rss < "$WORK/time"
  printf '%-10s %-8s %7.2f s  peak RSS %4d MB  uploaded %5s  unchanged %5s  deleted %3s\n' "$label" "$SCEN" \
    "$wall" "$((rss / 1024))" \
    "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploaded"])')" \
    "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["unchanged"])')" \
    "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["deleted"])')"
}

scenarios() { # label target extra-args...
  SCEN=cold; run "$@"
  SCEN=noop; run "$@"
  python3 "$GEN" touch "$WORK/site" >/dev/null
  SCEN=touch; run "$@"
  python3 "$GEN" mutate "$WORK/site" --fraction 0.01 >/dev/null
  SCEN=change1%; run "$@"
}

mkbucket "$CDNSYNC_TEST_MOTO_ENDPOINT" test test bench
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  scenarios "moto" "s3://bench" --endpoint-url "$CDNSYNC_TEST_MOTO_ENDPOINT"

mkbucket "$CDNSYNC_TEST_S3S_ENDPOINT" "$CDNSYNC_TEST_S3S_KEY" "$CDNSYNC_TEST_S3S_SECRET" bench
AWS_ACCESS_KEY_ID="$CDNSYNC_TEST_S3S_KEY" AWS_SECRET_ACCESS_KEY="$CDNSYNC_TEST_S3S_SECRET" AWS_REGION=us-east-1 \
  scenarios "s3s-fs" "s3://bench" --endpoint-url "$CDNSYNC_TEST_S3S_ENDPOINT" --sse none

scenarios "local dir" "$WORK/out"
