#!/usr/bin/env bash
# make supply-chain (part of make test): what the workspace builds, checked offline with
# cargo deny against deny.toml: every crate's license against the allow-list, bans (no OpenSSL),
# sources (crates.io only), and the RustSec advisories of the snapshot release/advisory-db.sh
# keeps in the cache (a vulnerability or a yanked version fails; refresh: that script's header).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
deny=$(release/tools.sh cargo-deny)
db=$(release/advisory-db.sh)
echo "supply-chain: RustSec advisory-db of $(git -C "$db" log -1 --format=%cs)," \
  "$(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l) crate advisories" >&2
# cargo deny reads the metadata of every platform's crates offline (--frozen); a fresh machine
# has only those its own builds needed, so fetch the rest first (nothing when they are there).
cargo fetch --locked -q
"$deny" deny --frozen check licenses bans sources advisories
