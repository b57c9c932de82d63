#!/usr/bin/env bash
# Build the book (mdbook, docs/ → target/book) and check every link in it and in the README
# offline, anchors included (lychee). Fails on a missing page, a broken include, a link to a file
# or heading that does not exist. The reference pages' freshness is checked by the unit tests
# that write them (`make reference`).
# Usage: docs/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mdbook=$(release/tools.sh mdbook)
lychee=$(release/tools.sh lychee)
# mdbook renders an include of a file or anchor that does not exist as nothing: refuse it.
bad=0
while IFS=: read -r page include; do
  spec=${include#\{\{#include }; spec=${spec%\}\}}
  file=${spec%%:*}; anchor=${spec#"$file"}; anchor=${anchor#:}
  path=$(dirname "$page")/$file
  if [[ ! -f $path ]] || { [[ -n $anchor ]] && ! grep -q "ANCHOR: $anchor\$" "$path"; }; then
    echo "docs: $page includes $spec, which does not exist" >&2; bad=1
  fi
done < <(grep -roE '\{\{#include [^}]+\}\}' docs/src)
((bad == 0)) || exit 1
rm -rf target/book
"$mdbook" build docs 2>&1 | { grep -v '^ INFO' || true; }
[[ -f target/book/index.html ]] || { echo "docs: mdbook wrote no book" >&2; exit 1; }
# Links that leave the repository are not followed (offline); every other one must resolve.
"$lychee" --offline --include-fragments --no-progress --root-dir "$PWD/target/book" \
  'target/book/**/*.html' README.md CHANGELOG.md
echo "docs: the book is in target/book/index.html"
