#!/usr/bin/env bash
# Checks that publishing a site with cdnsync breaks nothing a visitor would see:
# loads the build directory as a plain static host serves it (BEFORE) and the
# copy cdnsync publishes (AFTER) in headless Chromium, runs the same steps on
# both (direct loads, client-side navigation, search, theme toggle) and reports
# every failed request, console error, exception, broken image or failed step
# that appears only AFTER. Content-addressed names break sites whose JavaScript
# builds asset URLs at run time; loading each page once does not show that.
#
#   scripts/check-site.sh BUILD_DIR [SCENARIO.json]
#
#   scripts/check-site.sh ./build tests/browser/scenarios/docusaurus.json
#   scripts/check-site.sh .vitepress/dist tests/browser/scenarios/vitepress.json
#   scripts/check-site.sh ./dist        # generic: every page, and every link on the home page
#
# Without a scenario, tests/browser/scenarios/generic.json is used and every page
# of BUILD_DIR (up to CHECK_SITE_MAX_PAGES, default 100) is also loaded directly
# (CHECK_SITE_ALL_PAGES=1 adds those loads to any scenario, =0 turns them off).
# Scenario format: the header of tests/browser/compare-sites.mjs.
#
# Exit status: 0 no regressions, 1 regressions, 2 could not run (missing tools,
# publish failed, a scenario step that already fails BEFORE publishing).
#
# Environment:
#   CDNSYNC_BIN                 cdnsync binary (default: cdnsync on PATH, else
#                               target/release/cdnsync, else target/debug/cdnsync)
#   CDNSYNC_TEST_NODE_MODULES   a node_modules holding playwright-core
#   CDNSYNC_TEST_CHROMIUM       Chromium (default /usr/bin/chromium, or chromium on PATH)
#   CHECK_SITE_REPORT=FILE      also write the full JSON report there
#   CHECK_SITE_KEEP=1           keep the temporary directory (published copy, logs, report)
# Installs nothing: it says what is missing.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
browser_dir="$repo/tests/browser"
say() { printf 'check-site: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: scripts/check-site.sh BUILD_DIR [SCENARIO.json]"
build="$1"
[ -d "$build" ] || die "$build is not a directory"
[ -f "$build/index.html" ] || say "warning: $build has no index.html"
build="$(cd "$build" && pwd)"
if [ $# -eq 2 ]; then
  scenario="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
  [ -f "$scenario" ] || die "no scenario file $2"
  all_pages="${CHECK_SITE_ALL_PAGES:-0}"
else
  scenario="$browser_dir/scenarios/generic.json"
  all_pages="${CHECK_SITE_ALL_PAGES:-1}"
fi

# --- what is needed -----------------------------------------------------------
missing=0
bin="${CDNSYNC_BIN:-}"
if [ -z "$bin" ]; then
  for c in "$(command -v cdnsync || true)" "$repo/target/release/cdnsync" "$repo/target/debug/cdnsync"; do
    if [ -n "$c" ] && [ -x "$c" ]; then bin="$c"; break; fi
  done
fi
if [ -z "$bin" ] || ! [ -x "$(command -v "$bin" || echo "$bin")" ]; then
  say "missing: the cdnsync binary (set CDNSYNC_BIN, put cdnsync on PATH, or build it: cargo build --release)"
  missing=1
fi
if ! command -v node >/dev/null; then
  say "missing: node (>= 18), e.g. apt-get install nodejs"
  missing=1
fi
chromium="${CDNSYNC_TEST_CHROMIUM:-}"
if [ -z "$chromium" ]; then
  for c in /usr/bin/chromium "$(command -v chromium || true)" "$(command -v chromium-browser || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then chromium="$c"; break; fi
  done
fi
if [ -z "$chromium" ] || ! [ -x "$chromium" ]; then
  say "missing: Chromium (Debian/Ubuntu: apt-get install chromium), or set CDNSYNC_TEST_CHROMIUM"
  missing=1
fi
modules=""
for c in "${CDNSYNC_TEST_NODE_MODULES:-}" "${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv/node/node_modules" \
         "$repo/node_modules" "$browser_dir/node_modules" "$(npm root -g 2>/dev/null || true)"; do
  if [ -n "$c" ] && [ -f "$c/playwright-core/package.json" ]; then modules="$c"; break; fi
done
if [ -z "$modules" ]; then
  say "missing: playwright-core. Install it (no browser download needed) and point CDNSYNC_TEST_NODE_MODULES at it:"
  say "  npm install --prefix ~/.cache/cdnsync-testenv/node playwright-core@1.64.1"
  say "  export CDNSYNC_TEST_NODE_MODULES=~/.cache/cdnsync-testenv/node/node_modules"
  say "(scripts/test-env.sh installs it there)"
  missing=1
fi
[ "$missing" = 0 ] || exit 2
export CDNSYNC_TEST_NODE_MODULES="$modules" CDNSYNC_TEST_CHROMIUM="$chromium"

# --- publish, serve -------------------------------------------------------------
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-check-site.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${CHECK_SITE_KEEP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "publishing $build with $bin"
if ! "$bin" publish "$build" --to "$tmp/published" --no-gc >"$tmp/publish.log" 2>&1; then
  cat "$tmp/publish.log" >&2
  die "cdnsync publish failed"
fi
grep -E '^(fingerprinted|[0-9]+ uploaded)|warning' "$tmp/publish.log" | sed 's/^/  /' >&2 || true

# Waits for a line matching $2 in file $1 written by process $3; prints the match.
wait_for() {
  local i
  for i in $(seq 1 150); do
    if grep -qE "$2" "$1" 2>/dev/null; then grep -oE "$2" "$1" | head -1; return 0; fi
    kill -0 "$3" 2>/dev/null || { cat "$1" >&2; return 1; }
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

node "$browser_dir/static-server.mjs" "$build" 0 >"$tmp/before.log" 2>&1 &
pids+=($!)
before_port="$(wait_for "$tmp/before.log" '^[0-9]+$' "${pids[-1]}")" || die "the static server (BEFORE) did not start"
"$bin" serve "$tmp/published" --port 0 >"$tmp/after.log" 2>&1 &
pids+=($!)
after_url="$(wait_for "$tmp/after.log" 'http://[0-9.]+:[0-9]+' "${pids[-1]}")" || die "cdnsync serve (AFTER) did not start"
before_url="http://127.0.0.1:$before_port"
say "BEFORE $before_url (the build directory, static server)"
say "AFTER  $after_url (published by cdnsync, cdnsync serve)"

# --- compare --------------------------------------------------------------------
extra=()
if [ "$all_pages" = 1 ]; then
  max="${CHECK_SITE_MAX_PAGES:-100}"
  (cd "$build" && find . -name '*.html' -type f ! -name '404.html' | sed 's|^\./||' | LC_ALL=C sort) \
    | awk -v max="$max" 'NR <= max { p = $0; if (p == "index.html") p = ""; else sub(/\/index\.html$/, "/", p); print "/" p }' \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.split("\n").filter(Boolean))))' \
    >"$tmp/paths.json"
  n="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).length)' "$tmp/paths.json")"
  say "also loading $n page(s) of the build directly (CHECK_SITE_MAX_PAGES=$max)"
  extra=(--paths "$tmp/paths.json")
fi
say "scenario $(basename "$scenario")"
status=0
# In the background, so that Ctrl-C / SIGTERM stop it (and its Chromium) at once.
node "$browser_dir/compare-sites.mjs" "$before_url" "$after_url" "$scenario" --out "$tmp/report.json" "${extra[@]}" &
compare_pid=$!
pids=("$compare_pid" "${pids[@]}")
wait "$compare_pid" || status=$?
pids=("${pids[@]:1}")
if [ -n "${CHECK_SITE_REPORT:-}" ] && [ -f "$tmp/report.json" ]; then
  cp "$tmp/report.json" "$CHECK_SITE_REPORT"
  say "report: $CHECK_SITE_REPORT"
fi
case "$status" in
  0) say "OK: no regressions" ;;
  1) say "FAILED: publishing with cdnsync broke the site (regressions above)" ;;
  *) say "ERROR: the comparison could not run (see above)"; status=2 ;;
esac
exit "$status"
