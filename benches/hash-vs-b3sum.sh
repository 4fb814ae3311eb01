#!/usr/bin/env bash
# Scan + hash throughput of cdnsync against b3sum (the reference blake3
# tool, all cores) on the same tree, files in the page cache, median of 5.
#
#   benches/hash-vs-b3sum.sh [DIR]     # default: the 10,000-file generated site
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS="${PEERS:-$HOME/.cache/cdnsync-peers}"
DIR="${1:-$PEERS/corpora/synth-large}"
[ -d "$DIR" ] || { echo "no tree at $DIR (run benches/setup.sh or pass DIR)" >&2; exit 1; }
command -v b3sum >/dev/null || cargo install --locked b3sum --quiet
cargo build --release --quiet
BIN="$PWD/target/release/cdnsync"
EMPTY="$(mktemp -d)"; trap 'rm -rf "$EMPTY"' EXIT
bytes=$(find "$DIR" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$DIR" -type f | wc -l)
cat "$(find "$DIR" -type f | head -1)" >/dev/null
find "$DIR" -type f -print0 | xargs -0 cat >/dev/null   # warm the page cache

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
b3=$(for _ in 1 2 3 4 5; do
  s=$(date +%s.%N); find "$DIR" -type f -print0 | xargs -0 -n 512 -P 2 b3sum >/dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc -l
done | median)
# cdnsync's scan stage (walk + deny-list + blake3 on all cores), from its own timing.
cd=$(for _ in 1 2 3 4 5; do
  "$BIN" plan "$DIR" --to "$EMPTY/t" --no-fingerprint --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["timings"]["scan_ms"]/1000)'
done | median)
printf 'tree: %s files, %.1f MB\n' "$files" "$(echo "$bytes/1000000" | bc -l)"
printf 'b3sum (xargs -P 2): %.3f s  %.0f MB/s\n' "$b3" "$(echo "$bytes/$b3/1000000" | bc -l)"
printf 'cdnsync scan+hash:  %.3f s  %.0f MB/s\n' "$cd" "$(echo "$bytes/$cd/1000000" | bc -l)"
printf 'ratio (cdnsync throughput / b3sum): %.2f\n' "$(echo "$b3/$cd" | bc -l)"
