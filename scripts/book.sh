#!/usr/bin/env bash
# Builds the manual (the mdBook under docs/) into docs/book/. Installs mdbook first when it is
# missing: Debian has no package of it, so `cargo install` from crates.io, pinned, without the
# `serve`/`watch`/`search` features (a plain build needs none of them, and they double the
# compile), into .testbed/bin (gitignored, beside the rest of the test bed). Idempotent: a second
# run finds the pinned version and only builds. The internal links are checked by
# `cargo test --test it readme::` (mdbook itself does not check them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mdbook_version='0.5.4'
root="$PWD/.testbed"
mdbook="$root/bin/mdbook"

case "$("$mdbook" --version 2>/dev/null || true)" in
    "mdbook v$mdbook_version") ;;
    *)
        command -v cargo >/dev/null 2>&1 \
            || { echo "[book] cargo is missing: install Rust (https://rustup.rs) and rerun" >&2; exit 1; }
        echo "[book] cargo install mdbook $mdbook_version into $root (a few minutes, once)"
        cargo install --quiet --locked --no-default-features --version "$mdbook_version" \
            --root "$root" mdbook
        ;;
esac

"$mdbook" build docs
