#!/usr/bin/env bash
# Release figures for the generated 10,000-file site with 1% changed, on moto
# (S3 + CloudFront emulator): invalidation paths, phase durations and the
# switch window (first to last live copy). Uses the release binary.
#
#   benches/release-10k.sh [FILES]        # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-10000}"
GEN="${GEN_SITE:-tests/fixtures/gen_site.py}"
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
boto3.client("s3", endpoint_url=e, region_name="us-east-1").create_bucket(Bucket="rel")
cf = boto3.client("cloudfront", endpoint_url=e, region_name="us-east-1")
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
paths = [p for i in r["invalidations"] for p in i["paths"]]
print("%-8s uploaded %5d  bodies %5d  unchanged %5d  invalidation paths %d %s" % (
    sys.argv[1], r["uploaded"], r["bodies_stored"], r["unchanged"], len(paths), paths[:10]))
print("         scan %d ms, graph+rewrite %d ms, remote %d ms, phase 1 upload %d ms, phase 2 switch %d ms "
      "(window %d ms), phase 3 record %d ms, phase 4 invalidate %d ms, delete %d ms, gc %d ms, total %d ms" % (
    t["scan_ms"], t["fingerprint_ms"], t["remote_ms"], t["upload_ms"], t["switch_ms"], t["switch_window_ms"],
    t["record_ms"], t["invalidate_ms"], t["delete_ms"], t["gc_ms"], t["total_ms"]))
' "$1"
}
pub | report cold
python3 "$GEN" mutate "$WORK/site" --fraction 0.01 >/dev/null
pub | report change1%
