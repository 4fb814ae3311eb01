#!/usr/bin/env bash
# The project's test command: sets up the local S3 servers (scripts/test-env.sh)
# and runs every test against them, then the slow suite (`#[ignore]`d tests:
# the 6 GiB multipart upload). Extra arguments go to `cargo test` and skip the
# slow suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# The structural rules of ARCHITECTURE.md (no compile needed: seconds).
python3 scripts/check-structure.py
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
cargo test --all-targets --features dev-tools "$@"
if [ $# -eq 0 ]; then
    cargo test --features dev-tools --test it -- --ignored
fi
