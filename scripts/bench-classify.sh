#!/bin/sh
# Speed of `bounced classify` on the whole Sisimai corpus, one core.
#
#   scripts/bench-classify.sh [ROUNDS]
#
# Builds the release binary, then classifies every mail of
# ../shared/corpus/sisimai (labelled, unlabelled and negatives) ROUNDS
# times (default 20) pinned to CPU 0, and prints mails per second. As a
# reference measured in the same run it times `cat` of the same files, the
# floor of any tool that reads them, and prints the ratio.
set -eu
cd "$(dirname "$0")/.."
ROUNDS="${1:-20}"
CORPUS="${CORPUS_DIR:-../shared/corpus/sisimai}"
[ -d "$CORPUS/eml" ] || { echo "bench: $CORPUS not found" >&2; exit 1; }

cargo build --release --quiet --bin bounced
BIN="${CARGO_TARGET_DIR:-target}/release/bounced"
PIN=""
command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"

LIST=$(mktemp)
trap 'rm -f "$LIST"' EXIT
find "$CORPUS/eml" "$CORPUS/eml-unlabelled" "$CORPUS/eml-negatives" -name '*.eml' -type f 2>/dev/null | sort > "$LIST"
N=$(wc -l < "$LIST")
BYTES=$(xargs cat < "$LIST" | wc -c)

now() { date +%s.%N; }

# Warm the page cache and check the output once.
xargs $BIN classify < "$LIST" > /dev/null

# The file list repeated ROUNDS times: xargs packs it into as few
# processes as the argument limit allows, so start-up (regex compilation)
# is paid a few times, not once per round.
REP=$(mktemp)
trap 'rm -f "$LIST" "$REP"' EXIT
i=0
while [ "$i" -lt "$ROUNDS" ]; do cat "$LIST"; i=$((i + 1)); done > "$REP"

T0=$(now)
xargs $PIN $BIN classify < "$REP" > /dev/null
T1=$(now)
xargs $PIN cat < "$REP" > /dev/null
T2=$(now)

awk -v n="$N" -v r="$ROUNDS" -v b="$BYTES" -v t0="$T0" -v t1="$T1" -v t2="$T2" 'BEGIN {
    tc = t1 - t0; tr = t2 - t1;
    printf "corpus: %d mails, %.1f KiB, %d rounds, pinned to one core\n", n, b / 1024, r;
    printf "bounced classify: %.3f s  -> %.0f mails/s (%.1f MiB/s)\n", tc, n * r / tc, b * r / tc / 1048576;
    printf "reference (cat):  %.3f s  -> %.0f mails/s\n", tr, n * r / tr;
    printf "ratio classify/cat time: %.1fx\n", tc / tr;
}'
