#!/usr/bin/env bash
# Release figures for the generated 10,000-file site with 1% changed, on moto
# (S3 + CloudFront emulator): invalidation paths, phase durations and the
# switch window (first to last live copy). Uses the release binary.
#
#   benches/release-10k.sh [FILES]        # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-10000}"
GEN="${GEN_SITE:-../shared/bench/gen_site.py}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-rel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet
BIN="$PWD/target/release/cdnsync"
source scripts/test-env.sh
PY="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}/venv/bin/python"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
DIST=$("$PY" - "$CDNSYNC_TEST_MOTO_ENDPOINT" <<'PY'
import boto3, sys
e = sys.argv[1]
boto3.client("s3", endpoint_url=e).create_bucket(Bucket="rel")
cf = boto3.client("cloudfront", endpoint_url=e)
d = cf.create_distribution(DistributionConfig={
    "CallerReference": "bench", "Comment": "bench", "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": "rel.s3.us-east-1.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https",
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}, "MinTTL": 0}})
print(d["Distribution"]["Id"])
PY
)
python3 "$GEN" gen "$WORK/site" --files "$FILES" >/dev/null
echo "site: $FILES files, $(du -sh "$WORK/site" | cut -f1); distribution $DIST on moto"
pub() {
  "$BIN" publish "$WORK/site" --to s3://rel --endpoint-url "$CDNSYNC_TEST_MOTO_ENDPOINT" \
    --distribution-id "$DIST" --cdn-endpoint-url "$CDNSYNC_TEST_MOTO_ENDPOINT" --wait --json "$@" 2>/dev/null
}
report() {
  python3 -c '
import json, sys
r = json.load(sys.stdin); t = r["timings"]
inv = r["invalidations"]
print(f"{sys.argv[1]:8} uploaded {r[\"uploaded\"]:5}  bodies {r[\"bodies_stored\"]:5}  unchanged {r[\"unchanged\"]:5}  "
      f"invalidation paths {sum(len(i[\"paths\"]) for i in inv)} {[p for i in inv for p in i[\"paths\"]][:8]}")
print(f"         scan {t[\"scan_ms\"]} ms, graph+rewrite {t[\"fingerprint_ms\"]} ms, remote {t[\"remote_ms\"]} ms, "
      f"phase 1 upload {t[\"upload_ms\"]} ms, phase 2 switch {t[\"switch_ms\"]} ms (window {t[\"switch_window_ms\"]} ms), "
      f"phase 3 record {t[\"record_ms\"]} ms, phase 4 invalidate {t[\"invalidate_ms\"]} ms, delete {t[\"delete_ms\"]} ms, total {t[\"total_ms\"]} ms")
' "$1"
}
pub | report cold
python3 "$GEN" mutate "$WORK/site" --fraction 0.01 >/dev/null
pub | report change1%
