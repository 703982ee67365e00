#!/bin/sh
# Fuzz classify() for a bounded time.
#
#   FUZZ_SECONDS=60 scripts/fuzz.sh
#
# With a nightly toolchain (cargo-fuzz is installed if missing), runs the libFuzzer target in
# fuzz/ seeded with the golden fixtures (and the shared Sisimai corpus when
# present). Without them, falls back to the stable mutation smoke test
# (proptest over mutated fixtures), scaled to the same time budget.
set -eu
cd "$(dirname "$0")/.."
SECS="${FUZZ_SECONDS:-60}"

# cargo-fuzz is installed here when a nightly toolchain is present (the
# libFuzzer target needs nightly; without it the stable fallback runs).
if ! command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q nightly; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || echo "fuzz: cannot install cargo-fuzz" >&2
fi

if command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q nightly; then
    SEED=fuzz/corpus/classify
    mkdir -p "$SEED"
    cp tests/fixtures/*.eml "$SEED"/ 2>/dev/null || true
    if [ -d ../shared/corpus/sisimai/eml ]; then
        cp ../shared/corpus/sisimai/eml/*.eml "$SEED"/ 2>/dev/null || true
    fi
    echo "fuzz: cargo +nightly fuzz run classify for ${SECS}s"
    exec cargo +nightly fuzz run classify "$SEED" -- \
        -max_total_time="$SECS" -max_len=65536 -rss_limit_mb=1024 -timeout=5
fi

echo "fuzz: cargo-fuzz or nightly missing; running the stable mutation smoke test"
# Roughly 300 cases a second in a release build on one core.
CASES=$(( SECS * 300 ))
MUTATION_CASES="$CASES" exec cargo test --release --test mutation -- --nocapture
