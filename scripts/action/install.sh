#!/usr/bin/env bash
# Install the cdnsync binary for the GitHub Action (action.yml).
#
# 1. Download the release asset for this runner's OS/arch (HTTPS only) and
#    check its SHA-256 against the sums pinned in this action's own
#    repository (scripts/action/checksums.txt): a mismatch, or an explicit
#    version without a pinned sum, is fatal. The .sha256 published beside an
#    asset only detects corruption; it is used, with a warning, only for
#    `latest` newer than the pinned sums.
# 2. If no asset can be downloaded, build from the action's own checkout with
#    `cargo install --locked --path "$GITHUB_ACTION_PATH"`.
#
# Inputs (environment):
#   CDNSYNC_VERSION       latest | 1.2.3 | v1.2.3 | source (always build)
#   CDNSYNC_REPOSITORY    owner/name of the releases (default: the action's repo)
#   CDNSYNC_DOWNLOAD_URL  base of the releases (default https://github.com/$repo/releases)
#   CDNSYNC_INSTALL_DIR   where to put the binary (default $RUNNER_TEMP/cdnsync)
#   CDNSYNC_CHECKSUMS     pinned sums (default: checksums.txt beside this script)
# Outputs: `bin` (absolute path) and `version` on $GITHUB_OUTPUT; the
# directory is added to $GITHUB_PATH for later steps.
set -euo pipefail

log() { printf 'cdnsync-action: %s\n' "$*" >&2; }
fail() { printf '::error::%s\n' "$*"; exit 1; }

version="${CDNSYNC_VERSION:-latest}"
version="${version#v}"
# Only `latest`, `source` or a semantic version: never a path.
if ! [[ "$version" =~ ^(latest|source|[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?)$ ]]; then
  fail "invalid version \`$version\`: use latest, source or a version such as 1.2.3"
fi
repo="${CDNSYNC_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}"
[ -n "$repo" ] || repo="cdnsync/cdnsync"
base="${CDNSYNC_DOWNLOAD_URL:-https://github.com/$repo/releases}"
dest="${CDNSYNC_INSTALL_DIR:-${RUNNER_TEMP:-/tmp}/cdnsync}"
mkdir -p "$dest"

os="${RUNNER_OS:-$(uname -s)}"
arch="${RUNNER_ARCH:-$(uname -m)}"
case "$os/$arch" in
  Linux/X64 | Linux/x86_64) triple=x86_64-unknown-linux-gnu ;;
  Linux/ARM64 | Linux/aarch64) triple=aarch64-unknown-linux-gnu ;;
  macOS/X64 | Darwin/x86_64) triple=x86_64-apple-darwin ;;
  macOS/ARM64 | Darwin/arm64) triple=aarch64-apple-darwin ;;
  Windows/X64) triple=x86_64-pc-windows-msvc ;;
  *) triple="" ;;
esac
exe=cdnsync
[ "$triple" = x86_64-pc-windows-msvc ] && exe=cdnsync.exe

sha256_of() {
  if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

# HTTPS only, also across redirects; plain HTTP only to this machine (tests).
proto=(--proto =https --proto-redir =https)
case "$base" in
  http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/*)
    proto=(--proto =http --proto-redir =http) ;;
esac
download() { # url file
  curl "${proto[@]}" --fail --silent --show-error --location --retry 3 \
    --output "$2" "$1"
}

pinned_file="${CDNSYNC_CHECKSUMS:-$(dirname "${BASH_SOURCE[0]}")/checksums.txt}"
pinned() { # version asset -> sha256 or nothing
  [ -f "$pinned_file" ] || return 0
  awk -v v="$1" -v a="$2" '$1 == v && $2 == a { print tolower($3); exit }' "$pinned_file"
}

installed=""
if [ "$version" != source ] && [ -n "$triple" ]; then
  asset="cdnsync-$triple.tar.gz"
  if [ "$version" = latest ]; then
    url="$base/latest/download/$asset"
  else
    url="$base/download/v$version/$asset"
  fi
  tmp="$(mktemp -d)"
  if download "$url" "$tmp/$asset"; then
    got="$(sha256_of "$tmp/$asset")"
    if [ "$version" != latest ]; then
      want="$(pinned "$version" "$asset")"
      [ -n "$want" ] || fail "no SHA-256 pinned for cdnsync $version ($asset) in $pinned_file: use a newer action ref, or version: source"
    else
      tar -xzf "$tmp/$asset" -C "$tmp"
      found="$(find "$tmp" -type f -name "$exe" | head -n 1)"
      latest_version="$([ -n "$found" ] && "$found" --version 2>/dev/null | awk '{print $2}' || true)"
      want="$(pinned "$latest_version" "$asset")"
      if [ -z "$want" ]; then
        download "$url.sha256" "$tmp/$asset.sha256" || fail "no checksum for $url"
        want="$(tr -s ' \t' ' ' <"$tmp/$asset.sha256" | cut -d' ' -f1 | tr 'A-F' 'a-f')"
        printf '::warning::cdnsync %s is newer than the checksums this action pins; checked against the .sha256 published beside it (detects corruption, not tampering). Pin `version:` to a pinned release for a verified install.\n' "${latest_version:-latest}"
      fi
    fi
    if [ "$want" != "$got" ]; then
      fail "checksum mismatch for $url: expected $want, got $got (refusing to install)"
    fi
    rm -rf "$tmp/extract" && mkdir "$tmp/extract"
    tar -xzf "$tmp/$asset" -C "$tmp/extract"
    found="$(find "$tmp/extract" -type f -name "$exe" | head -n 1)"
    [ -n "$found" ] || fail "$asset holds no $exe"
    install -m 0755 "$found" "$dest/$exe"
    installed="$url (sha256 $got)"
  else
    log "no release asset at $url; building from source instead"
  fi
  rm -rf "$tmp"
fi

if [ -z "$installed" ]; then
  command -v cargo >/dev/null || fail "cannot download cdnsync for $os/$arch and cargo is not installed (add dtolnay/rust-toolchain before this action)"
  src="${GITHUB_ACTION_PATH:-}"
  if [ -n "$src" ] && [ -f "$src/Cargo.toml" ]; then
    cargo install --locked --root "$dest/cargo" --path "$src"
  elif [ "$version" = latest ] || [ "$version" = source ]; then
    cargo install --locked --root "$dest/cargo" cdnsync
  else
    cargo install --locked --root "$dest/cargo" cdnsync --version "$version"
  fi
  install -m 0755 "$dest/cargo/bin/$exe" "$dest/$exe"
  installed="cargo install"
fi

"$dest/$exe" --version >/dev/null || fail "the installed cdnsync does not run"
got_version="$("$dest/$exe" --version | awk '{print $2}')"
if [ "$version" != latest ] && [ "$version" != source ] && [ "$got_version" != "$version" ]; then
  rm -f "$dest/$exe"
  fail "asked for cdnsync $version, the installed binary is $got_version (refusing it)"
fi
log "installed cdnsync $got_version from $installed"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "bin=$dest/$exe"; echo "version=$got_version"; } >>"$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$dest" >>"$GITHUB_PATH"
fi
