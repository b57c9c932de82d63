#!/usr/bin/env bash
# The RustSec advisory database the vulnerability check reads, as a git snapshot in the cache
# outside the checkout, where cargo deny (deny.toml's db-path, offline) looks for the database of
# https://github.com/rustsec/advisory-db. The check itself never fetches: it reads this snapshot,
# and says how old it is.
#
# Refresh it (on a machine that reaches GitHub):   release/advisory-db.sh --refresh
# or from any clone or mirror of rustsec/advisory-db:
#   ADVISORY_DB_SOURCE=/path/to/advisory-db release/advisory-db.sh --refresh
# Prints the snapshot's path.
set -euo pipefail
# cargo deny 0.20's folder for that URL, under deny.toml's db-path.
db=$HOME/.cache/maintenance-operator/advisory-dbs/advisory-db-3157b0e258782691
refresh=0
[[ ${1:-} == --refresh ]] && refresh=1
if [[ -d $db/.git && $refresh == 0 ]]; then
  echo "$db"
  exit 0
fi
# Where a snapshot may come from, first that answers: the one named, a local mirror of this
# workplace's tools, then upstream.
sources=()
[[ -n ${ADVISORY_DB_SOURCE:-} ]] && sources+=("$ADVISORY_DB_SOURCE")
# A mirror where this project's development machines keep one (they reach no GitHub), then upstream.
sources+=(/work/.mirror/rustsec+advisory-db/repo https://github.com/rustsec/advisory-db.git)
for source in "${sources[@]}"; do
  [[ $source == http* || -e $source ]] || continue
  tmp=$db.tmp.$$
  rm -rf "$tmp"
  url=$source
  [[ $source == http* ]] || url=file://$source
  if timeout 300 git clone --quiet --depth 1 "$url" "$tmp"; then
    # cargo deny takes the database's age from .git/HEAD's time (no FETCH_HEAD here): the
    # snapshot's own, so that an old snapshot cloned today still reads as old.
    touch -d "@$(git -C "$tmp" log -1 --format=%ct)" "$tmp/.git/HEAD"
    rm -rf "$db"
    mv "$tmp" "$db"
    echo "advisory-db: snapshot of $(git -C "$db" log -1 --format=%cs) from $source" >&2
    echo "$db"
    exit 0
  fi
  rm -rf "$tmp"
done
echo "advisory-db: no snapshot in $db and none could be had (tried: ${sources[*]}); set ADVISORY_DB_SOURCE to a clone of https://github.com/rustsec/advisory-db" >&2
exit 1
