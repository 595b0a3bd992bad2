#!/usr/bin/env bash
# Regenerates vendor/burn-flex.patch: the difference between the crates.io release of
# burn-flex that vendor/burn-flex is based on and the vendored copy.
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' burn-flex/Cargo.toml | head -n 1)
pristine=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/burn-flex-"$version" 2>/dev/null | head -n 1 || true)
if [ -z "$pristine" ]; then
  # Ember's own `cargo fetch` never downloads it: [patch.crates-io] points at the copy here.
  echo "burn-flex $version is not in the cargo registry cache; fetch it with a scratch crate:" >&2
  echo "  cargo new -q /tmp/ff && cd /tmp/ff && cargo add -q burn-flex@=$version && cargo fetch" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$pristine" "$tmp/a"
rm -f "$tmp/a/Cargo.lock" "$tmp/a/.cargo-ok" "$tmp/a/.cargo_vcs_info.json" "$tmp/a/Cargo.toml.orig"
cp -r burn-flex "$tmp/b"
rm -rf "$tmp/b/target" "$tmp/b/Cargo.lock"
# No timestamps, so that the file changes only when the code does.
(cd "$tmp" && diff -ruN a b | sed -E 's/^(---|\+\+\+) ([^\t]+)\t.*/\1 \2/') > burn-flex.patch || true
echo "wrote vendor/burn-flex.patch ($(wc -l < burn-flex.patch) lines) against $pristine"
