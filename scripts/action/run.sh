#!/usr/bin/env bash
# Run `cdnsync publish` for the GitHub Action (action.yml). With
# GITHUB_ACTIONS=true, cdnsync itself writes the job summary, the
# annotations and the step outputs (release, uploaded, invalidation-id, url).
#
# Inputs (environment): INPUT_DIR (required), INPUT_TO, INPUT_DISTRIBUTION_ID,
# INPUT_CONFIG, INPUT_ARGS (extra arguments, shell-quoted, never evaluated),
# CDNSYNC_BIN (default: cdnsync on PATH).
set -euo pipefail

bin="${CDNSYNC_BIN:-cdnsync}"
[ -n "${INPUT_DIR:-}" ] || { echo "::error::the action's \`dir\` input is required"; exit 2; }

args=(publish "$INPUT_DIR")
[ -n "${INPUT_TO:-}" ] && args+=(--to "$INPUT_TO")
[ -n "${INPUT_DISTRIBUTION_ID:-}" ] && args+=(--distribution-id "$INPUT_DISTRIBUTION_ID")
[ -n "${INPUT_CONFIG:-}" ] && args+=(--config "$INPUT_CONFIG")

extra=()
if [ -n "${INPUT_ARGS:-}" ]; then
  # xargs splits on blanks and honours quotes without running anything.
  while IFS= read -r -d '' a; do extra+=("$a"); done \
    < <(printf '%s' "$INPUT_ARGS" | xargs printf '%s\0')
fi

echo "cdnsync ${args[*]} ${extra[*]:-}" >&2
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
