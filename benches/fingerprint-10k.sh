#!/usr/bin/env bash
# Fingerprinting figures for the generated hand-written site
# (tests/fixtures/gen_site.py gen --plain): counts (assets renamed, files and
# references rewritten, cycles, warnings) and the time the reference graph +
# rewrite stage adds over a plain publish (--no-fingerprint), cold, into a
# local directory, median of 3. Uses the release binary.
#
#   benches/fingerprint-10k.sh [FILES]        # default 10000
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${1:-10000}"
GEN="${GEN_SITE:-tests/fixtures/gen_site.py}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-fp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --quiet
BIN="$PWD/target/release/cdnsync"
python3 "$GEN" gen "$WORK/site" --files "$FILES" --plain >/dev/null
echo "site: $FILES files (--plain), $(du -sh "$WORK/site" | cut -f1)"

run() { # label extra-args... ; prints "wall fingerprint_ms" and keeps the last JSON
  rm -rf "$WORK/out"
  local t0 t1
  t0=$(date +%s.%N)
  "$BIN" publish "$WORK/site" --to "$WORK/out" --json "$@" >"$WORK/report.json" 2>/dev/null
  t1=$(date +%s.%N)
  python3 - "$WORK/report.json" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], r["timings"]["fingerprint_ms"], r["timings"]["scan_ms"], r["timings"]["upload_ms"])
PY
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for mode in fingerprint plain; do
  args=()
  [[ $mode == plain ]] && args=(--no-fingerprint)
  : >"$WORK/$mode.txt"
  for _ in 1 2 3; do run "${args[@]}" >>"$WORK/$mode.txt"; done
  printf '%-12s wall %6.2f s (median of 3)   graph+rewrite %5s ms   scan %4s ms   upload %5s ms\n' "$mode" \
    "$(cut -d' ' -f1 "$WORK/$mode.txt" | median)" "$(cut -d' ' -f2 "$WORK/$mode.txt" | median)" \
    "$(cut -d' ' -f3 "$WORK/$mode.txt" | median)" "$(cut -d' ' -f4 "$WORK/$mode.txt" | median)"
  [[ $mode == fingerprint ]] && python3 - "$WORK/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = r["fingerprint"]
print(f"  assets renamed {f['assets_renamed']}, files rewritten {f['files_rewritten']}, "
      f"references rewritten {f['references_rewritten']}, cycles {f['cycles']} ({f['files_in_cycles']} files), "
      f"parse errors {f['parse_errors']}, missing references {len(r['missing_references'])}, warnings {len(r['warnings'])}")
PY
done

# The same without upload noise: dry runs (scan + graph + plan only).
for mode in fingerprint plain; do
  args=()
  [[ $mode == plain ]] && args=(--no-fingerprint)
  for _ in 1 2 3; do
    /usr/bin/time -f '%e' -o "$WORK/t" "$BIN" plan "$WORK/site" --to "$WORK/none" --json "${args[@]}" >/dev/null 2>&1
    cat "$WORK/t"
  done | median | xargs printf '%-12s dry run %6.2f s (median of 3)\n' "$mode"
done
