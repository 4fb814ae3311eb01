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
#   moto_server   S3 + CloudFront emulator, accepts any credentials; started
#                 by scripts/moto-server.py, which adds the CloudFront
#                 KeyValueStore data plane moto lacks
#                 -> CDNSYNC_TEST_MOTO_ENDPOINT
#   s3s-fs 0.14.1 S3 on a directory, enforces SigV4 with one key pair
#                 -> CDNSYNC_TEST_S3S_ENDPOINT, CDNSYNC_TEST_S3S_KEY/SECRET
#
# Browser tests: Debian's chromium (apt) driven by playwright-core (npm)
#                 -> CDNSYNC_TEST_CHROMIUM, CDNSYNC_TEST_NODE_MODULES
# Cache purge tests: Debian's varnish (apt); each test starts its own varnishd
#                 -> CDNSYNC_TEST_VARNISHD
# Corpora, all from this repository (tests/fixtures/):
#   gen_site.py (synthetic sites)          -> CDNSYNC_TEST_GEN_SITE
#   build-vite.sh (the Vite app)           -> CDNSYNC_TEST_VITE_DIST
#   build-site.sh docusaurus / vitepress   -> CDNSYNC_TEST_DOCUSAURUS_DIST,
#                                             CDNSYNC_TEST_VITEPRESS_DIST
#   each built once per content of its fixture (rebuilt when it changes).
#
# Everything is checked before anything is built: a prerequisite that is
# missing and cannot be installed stops here, naming it (exit 1).
#
# Install locations (override with CDNSYNC_TESTENV_DIR): a venv for moto, a
# cargo root for s3s-fs, node_modules and the built corpora, kept between
# runs so the second run takes seconds.

_te_dir="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}"
_te_moto_version="5.2.5"
_te_s3s_version="0.14.1"
_te_playwright_version="1.64.1"
_te_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$_te_dir"

_te_log() { printf 'test-env: %s\n' "$*" >&2; }
_te_fail() { printf 'test-env: FAILED: %s\n' "$*" >&2; return 1; }

# Every tool the setup itself needs, before anything long starts.
_te_preflight() {
  local missing=() t
  for t in python3 cargo node npm curl git tar; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3 venv/ensurepip (Debian: apt-get install python3-venv)")
  if ! command -v chromium >/dev/null 2>&1 || ! { command -v varnishd >/dev/null 2>&1 || [ -x /usr/sbin/varnishd ]; }; then
    command -v apt-get >/dev/null 2>&1 || missing+=("apt-get (to install chromium and varnish), or install them by hand")
    [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1 || missing+=("root or sudo (to apt-get install chromium and varnish)")
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  [ "$major" -ge 20 ] || missing+=("node >= 20 (found ${major})")
  if [ ${#missing[@]} -gt 0 ]; then
    _te_fail "missing prerequisites: ${missing[*]}"
    return 1
  fi
}

# apt-get as root, or through sudo.
_te_apt() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# A short content hash of the files under a fixture (its build key).
_te_fixture_key() {
  (cd "$_te_repo/tests/fixtures" && find "$@" -type f -not -path '*/node_modules/*' -print0 | sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-16)
}

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
  _te_apt varnish || return 1
}

_te_install_browser() {
  if ! command -v chromium >/dev/null 2>&1; then
    _te_log "installing Debian's chromium (apt)"
    _te_apt chromium || return 1
  fi
  local node="$_te_dir/node"
  if [ ! -f "$node/node_modules/playwright-core/package.json" ] \
     || ! grep -q "\"version\": \"$_te_playwright_version\"" "$node/node_modules/playwright-core/package.json"; then
    _te_log "installing playwright-core@$_te_playwright_version (npm) into $node"
    mkdir -p "$node"
    npm install --prefix "$node" --no-audit --no-fund --silent "playwright-core@$_te_playwright_version" >/dev/null || return 1
  fi
}

# A corpus built from a fixture of this repository, once per content of the
# fixture: $1 name, $2 fixture paths (for the key), then the build command
# (given the output directory as its last argument).
_te_build_corpus() {
  local name=$1 paths=$2; shift 2
  local key out
  key="$(_te_fixture_key $paths)" || return 1
  out="$_te_dir/corpora/$name-$key"
  if [ ! -f "$out/index.html" ]; then
    _te_log "building the $name corpus from tests/fixtures (npm, once per fixture change)"
    rm -rf "$_te_dir/corpora/$name-"*
    mkdir -p "$_te_dir/corpora"
    "$@" "$out" >"$_te_dir/corpora/$name.log" 2>&1 || {
      tail -20 "$_te_dir/corpora/$name.log" >&2
      return 1
    }
  fi
  printf '%s' "$out"
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
  _te_preflight || return 1
  _te_install_moto || { _te_fail "moto (PyPI moto[server]==$_te_moto_version into $_te_dir/venv)"; return 1; }
  _te_install_s3s || { _te_fail "s3s-fs $_te_s3s_version (cargo install from crates.io)"; return 1; }
  _te_install_browser || { _te_fail "chromium (apt) or playwright-core $_te_playwright_version (npm)"; return 1; }
  _te_install_varnish || { _te_fail "varnish (apt)"; return 1; }
  local vite docusaurus vitepress
  vite="$(_te_build_corpus vite vite-app "$_te_repo/tests/fixtures/build-vite.sh")" \
    || { _te_fail "the Vite corpus (tests/fixtures/build-vite.sh; log in $_te_dir/corpora/vite.log)"; return 1; }
  docusaurus="$(_te_build_corpus docusaurus docusaurus "$_te_repo/tests/fixtures/build-site.sh" docusaurus)" \
    || { _te_fail "the Docusaurus corpus (tests/fixtures/build-site.sh; log in $_te_dir/corpora/docusaurus.log)"; return 1; }
  vitepress="$(_te_build_corpus vitepress vitepress "$_te_repo/tests/fixtures/build-site.sh" vitepress)" \
    || { _te_fail "the VitePress corpus (tests/fixtures/build-site.sh; log in $_te_dir/corpora/vitepress.log)"; return 1; }
  _te_run="$(mktemp -d "${TMPDIR:-/tmp}/cdnsync-testenv.XXXXXX")"
  _te_pids=""

  local moto_port s3s_port
  moto_port="$(_te_free_port)"
  # moto_server plus the CloudFront KeyValueStore data plane (scripts/moto-server.py).
  "$_te_dir/venv/bin/python" "$_te_repo/scripts/moto-server.py" 127.0.0.1 "$moto_port" >"$_te_run/moto.log" 2>&1 &
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
  export CDNSYNC_TEST_GEN_SITE="$_te_repo/tests/fixtures/gen_site.py"
  export CDNSYNC_TEST_VITE_DIST="$vite"
  export CDNSYNC_TEST_DOCUSAURUS_DIST="$docusaurus"
  export CDNSYNC_TEST_VITEPRESS_DIST="$vitepress"
  _te_log "moto  $CDNSYNC_TEST_MOTO_ENDPOINT"
  _te_log "s3s   $CDNSYNC_TEST_S3S_ENDPOINT"
  trap cdnsync_test_env_stop EXIT
}

cdnsync_test_env_start
