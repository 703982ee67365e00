#!/usr/bin/env bash
# The newcomer's first contact with bounced: builds it, starts a private
# Dovecot on loopback whose mailbox holds real sample bounces, runs one pass
# (`bounced run --once`) into a local SQLite file, prints the verdicts
# (`bounced addresses`), and stops Dovecot. Nothing outside this checkout and
# a temp dir is touched; the database stays in ./demo-state/ for you to query.
#
# Samples: ../shared/corpus/sisimai/eml (and its non-bounces) when present,
# else the project's own golden set in tests/fixtures/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bash scripts/install-deps.sh

say "Building bounced (cargo build)"
cargo build --locked --quiet
bin="$root/target/debug/bounced"

# Dovecot's sockets live under its directory, and a socket path may not exceed
# 108 bytes: keep the server in a short temp dir, the database in the checkout.
srv=$(mktemp -d /tmp/bounced-demo.XXXXXX)
state="$root/demo-state"
rm -rf "$state" && mkdir -p "$state"
cleanup() {
    bash "$root/scripts/dovecot-sandbox.sh" stop "$srv" >/dev/null 2>&1 || true
    rm -rf "$srv"
}
trap cleanup EXIT

corpus="$root/../shared/corpus/sisimai"
if [ -d "$corpus/eml" ]; then
    samples=("$corpus"/eml/*.eml "$corpus"/eml-negatives/*.eml)
    where="$corpus (real bounces from the Sisimai set, plus its non-bounces)"
else
    samples=("$root"/tests/fixtures/*.eml)
    where="tests/fixtures (the project's golden set)"
fi

say "Seeding a private Dovecot mailbox with ${#samples[@]} messages from $where"
inbox="$srv/mail/demo"
mkdir -p "$inbox/new" "$inbox/cur" "$inbox/tmp"
i=0
for f in "${samples[@]}"; do
    i=$((i + 1))
    cp "$f" "$inbox/new/$(date +%s).demo$i.$(basename "$f")"
done

port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "demo: no free loopback port found" >&2; exit 1; }
bash scripts/dovecot-sandbox.sh start "$srv" --imap-port "$port" --user demo:demo-password
echo "Dovecot is listening on 127.0.0.1:$port (user demo)"

cat > "$state/config.toml" <<CONF
# Written by scripts/demo.sh
[database]
url = "sqlite://$state/bounced.db"

[[mailbox]]
name = "demo"
host = "127.0.0.1"
port = $port
tls = "none"            # plaintext is allowed only to loopback
username = "demo"
password = "demo-password"
after = "move:Processed"
after_other = "none"

[log]
level = "warn"
CONF
chmod 600 "$state/config.toml"

say "One pass: bounced run --once --config demo-state/config.toml"
start=$(date +%s%N)
"$bin" run --once --config "$state/config.toml"
ms=$((($(date +%s%N) - start) / 1000000))
printf 'Pass finished in %d.%03d s\n' $((ms / 1000)) $((ms % 1000))

say "What one bounce looks like: bounced classify --explain"
example=${samples[0]}
for f in "${samples[@]}"; do
    case "$f" in *postfix*|*seed*) example=$f; break ;; esac
done
"$bin" classify --explain "$example"

say "The addresses to act on: bounced addresses --action remove"
"$bin" addresses --config "$state/config.toml" --action remove

say "Summary"
"$bin" addresses --config "$state/config.toml" --format csv |
    awk -F, 'NR > 1 { n[$2 " -> " $3]++; r[$8]++; t++ }
             END {
               printf "%d addresses bounced:\n", t
               for (k in n) printf "  %-22s %d\n", k, n[k]
               print "by last reason:"
               for (k in r) printf "  %-22s %d\n", k, r[k]
             }'
cat <<END

The database is $state/bounced.db; the config the pass used is
$state/config.toml. Try:
  $bin addresses --db $state/bounced.db --format csv
  $bin addresses --db $state/bounced.db --status soft_fail
and the example SQL queries in README.md ("Database").
END
