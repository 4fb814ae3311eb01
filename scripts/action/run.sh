#!/usr/bin/env bash
# Run `cdnsync publish` for the GitHub Action (action.yml). With
# GITHUB_ACTIONS=true, cdnsync itself writes the job summary, the
# annotations and the step outputs (release, uploaded, invalidation-id, url…).
#
# Inputs (environment): INPUT_DIR (required), INPUT_TO, INPUT_DISTRIBUTION_ID,
# INPUT_CONFIG, INPUT_ARGS, CDNSYNC_BIN (default: cdnsync on PATH).
#
# INPUT_ARGS: extra arguments, never evaluated. On several lines, each line
# is one argument, exactly as written (the unambiguous form). On one line,
# they are split on blanks with '…' and "…" quoting; a quote that is not
# closed fails the step instead of silently dropping what follows.
set -euo pipefail

fail() { printf '::error::%s\n' "$*"; exit 2; }
# user:password@ in any URL is never echoed.
redact() { sed -E 's#(://)[^/@[:space:]]*@#\1***@#g'; }

bin="${CDNSYNC_BIN:-cdnsync}"
[ -n "${INPUT_DIR:-}" ] || fail "the action's \`dir\` input is required"

args=(publish "$INPUT_DIR")
[ -n "${INPUT_TO:-}" ] && args+=(--to "$INPUT_TO")
[ -n "${INPUT_DISTRIBUTION_ID:-}" ] && args+=(--distribution-id "$INPUT_DISTRIBUTION_ID")
[ -n "${INPUT_CONFIG:-}" ] && args+=(--config "$INPUT_CONFIG")

extra=()
if [ -n "${INPUT_ARGS:-}" ]; then
  case "$INPUT_ARGS" in
    *$'\n'*)
      while IFS= read -r line || [ -n "$line" ]; do
        line="${line%$'\r'}"
        [ -n "$line" ] && extra+=("$line")
      done <<<"$INPUT_ARGS"
      ;;
    *)
      split="$(mktemp)"
      trap 'rm -f "$split"' EXIT
      # xargs splits on blanks and honours quotes without running anything;
      # it fails on an unmatched quote, and so does the step.
      if ! printf '%s' "$INPUT_ARGS" | xargs printf '%s\0' >"$split" 2>"$split.err"; then
        fail "cannot parse the \`args\` input ($(redact <"$split.err" | tr -d '\n')): close the quote, or give one argument per line"
      fi
      while IFS= read -r -d '' a; do extra+=("$a"); done <"$split"
      ;;
  esac
fi

printf 'cdnsync %s\n' "${args[*]} ${extra[*]:-}" | redact >&2
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
