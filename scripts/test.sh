#!/usr/bin/env bash
# The project's test command: sets up the local S3 servers (scripts/test-env.sh)
# and runs every test against them. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh
cargo test --all-targets --features dev-tools "$@"
