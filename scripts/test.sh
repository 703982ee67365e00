#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then checks
# formatting and lints, then runs every test (unit, integration against a real
# Dovecot, corpus, golden set). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

# Broken or private doc links are errors, so the API docs stay buildable.
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked

# Doc tests are not in --all-targets; they run first so that the suite's
# own summary lines close the output.
echo "== cargo test --doc"
cargo test --doc --locked

echo "== cargo test"
cargo test --all-targets --locked --no-fail-fast "$@"
