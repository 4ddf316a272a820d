#!/usr/bin/env bash
# `make lint`: no Docker engine runs here, so the images are not built; this checks at least that
# every file a Dockerfile copies from the build context (COPY/ADD without --from) exists in the
# repository, and that each image's entrypoint is the dispatcher the rendered pods expect.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for f in deploy/images/*.Dockerfile; do
  while read -r -a words; do
    args=()
    for w in "${words[@]:1}"; do [[ $w == --* ]] || args+=("$w"); done
    # The last word is the destination; the others are sources in the build context.
    for src in "${args[@]:0:${#args[@]}-1}"; do
      # shellcheck disable=SC2086 # globs are the point
      if ! compgen -G "$src" >/dev/null; then
        echo "$f: COPY source $src does not exist" >&2
        status=1
      fi
    done
  done < <(grep -E '^(COPY|ADD) ' "$f" | grep -v -- '--from=')
  grep -q '^ENTRYPOINT \["/usr/local/bin/ambit-daemon"\]' "$f" || { echo "$f: no ambit-daemon ENTRYPOINT" >&2; status=1; }
done
exit $status
