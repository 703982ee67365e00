#!/bin/sh
# Speed of `bounced classify` on the whole Sisimai corpus, one core.
#
#   scripts/bench-classify.sh [ROUNDS]
#
# Builds the release binary, then classifies every mail of
# ../shared/corpus/sisimai (labelled, unlabelled and negatives) ROUNDS
# times (default 20) pinned to CPU 0, and prints mails per second. As
# references measured in the same run it times `cat` of the same files (the
# floor of any tool that reads them) and Sisimai 4.25 (Debian's
# libsisimai-perl, installed here if missing: `Sisimai->make` in-process over
# the same mails held in memory, after a warm-up round), and prints the ratios.
# Issue 10's target: bounced >= 18 x Sisimai on one core. Figures only; the
# script never fails on a slow machine.
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

# Sisimai 4.25 in-process: every mail read into memory once, one warm-up
# round, then timed rounds (fewer: it is much slower).
if ! perl -MSisimai -e 1 2>/dev/null && [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libsisimai-perl >/dev/null 2>&1 || true
fi
SROUNDS=$(( ROUNDS / 10 > 0 ? ROUNDS / 10 : 1 ))
SIS=$($PIN perl -MSisimai -MTime::HiRes=time -e '
    my ($list, $rounds) = @ARGV;
    open(my $fh, "<", $list) or die; my @mails;
    while (my $f = <$fh>) { chomp $f; local $/; open(my $m, "<", $f) or next; push @mails, scalar <$m>; }
    my $n = 0;
    for my $m (@mails) { my $r = Sisimai->make(\$m); }
    my $t0 = time;
    for (1 .. $rounds) { for my $m (@mails) { my $r = Sisimai->make(\$m); $n++ } }
    printf "%.6f %d\n", time - $t0, $n;
' "$LIST" "$SROUNDS" 2>/dev/null || echo "0 0")
TS=${SIS% *}
NS=${SIS#* }

awk -v n="$N" -v r="$ROUNDS" -v b="$BYTES" -v t0="$T0" -v t1="$T1" -v t2="$T2" -v ts="$TS" -v ns="$NS" 'BEGIN {
    tc = t1 - t0; tr = t2 - t1;
    bps = n * r / tc;
    printf "corpus: %d mails, %.1f KiB, %d rounds, pinned to one core\n", n, b / 1024, r;
    printf "bounced classify: %.3f s  -> %.0f mails/s (%.1f MiB/s)\n", tc, bps, b * r / tc / 1048576;
    printf "reference (cat):  %.3f s  -> %.0f mails/s\n", tr, n * r / tr;
    printf "ratio classify/cat time: %.1fx\n", tc / tr;
    if (ts > 0 && ns > 0) {
        sps = ns / ts;
        printf "Sisimai 4.25 (in-process): %.3f s for %d mails -> %.0f mails/s\n", ts, ns, sps;
        printf "ratio bounced/Sisimai speed: %.1fx (issue 10 target: >= 18x)\n", bps / sps;
    } else {
        printf "Sisimai 4.25: not available (install libsisimai-perl)\n";
    }
}'
