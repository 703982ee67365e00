#!/usr/bin/env bash
# dovecot-sandbox.sh: a private, self-contained Dovecot IMAP server in one
# directory, listening on loopback only. Used by the integration tests
# (tests/common) and by scripts/demo.sh. It never touches the system Dovecot:
# every file it writes (config, sockets, state, logs, mail) is under DIR.
#
# Usage:
#   dovecot-sandbox.sh start DIR --imap-port N [--imaps-port M --cert PEM --key PEM]
#                      --user NAME:PASSWORD [--user NAME:PASSWORD ...] [--conf 'key = value' ...]
#   dovecot-sandbox.sh stop DIR [--now]
#   dovecot-sandbox.sh status DIR        # exit 0 when running
#
#   DIR           a directory (created if missing). Keep it short: Dovecot's
#                 UNIX sockets live in DIR/run and a socket path may not
#                 exceed 108 bytes.
#   --imap-port   plaintext IMAP (STARTTLS too when a cert is given) on 127.0.0.1.
#   --imaps-port  implicit-TLS IMAP on 127.0.0.1; needs --cert and --key.
#   --cert/--key  PEM server certificate (chain) and private key.
#   --user        a login and its password (no ':' in either). Repeatable.
#   --conf        a raw dovecot.conf line appended to the generated config
#                 (e.g. --conf 'imap_capability = IMAP4rev1 IDLE' for tests).
#   stop --now    SIGKILL the master and its children at once (a crashed
#                 server: open connections are cut). Without it, a clean
#                 SIGTERM shutdown, which Dovecot takes ~2 s to finish.
#
# Mail is kept as maildir in DIR/mail/NAME (INBOX = DIR/mail/NAME itself,
# folder F = DIR/mail/NAME/.F). To seed many messages quickly, write files
# into DIR/mail/NAME/new/ BEFORE `start` (start hands the tree to the mail
# user); after start, APPEND over IMAP.
#
# `start` returns once every port accepts connections; on failure it prints
# the reason and the end of Dovecot's log (DIR/dovecot.log) and exits 1.
# Plaintext LOGIN is allowed: the server only listens on loopback.
# Works as root (mail processes then run as `nobody`) or as a normal user
# (everything runs as that user). Needs the Debian package dovecot-imapd.
set -euo pipefail

die() { echo "dovecot-sandbox: $*" >&2; exit 1; }

DOVECOT=${DOVECOT:-$(command -v dovecot || echo /usr/sbin/dovecot)}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1; dir=$2; shift 2

master_pid() {
    local f="$dir/run/master.pid"
    [ -s "$f" ] && cat "$f" || return 1
}

running() {
    local pid
    pid=$(master_pid 2>/dev/null) || return 1
    kill -0 "$pid" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log() {
    if [ -f "$dir/dovecot.log" ]; then
        echo "---- last lines of $dir/dovecot.log ----" >&2
        tail -n 30 "$dir/dovecot.log" >&2
    fi
}

case "$cmd" in
start)
    [ -x "$DOVECOT" ] || die "dovecot not found (install the Debian package dovecot-imapd)"
    imap_port=""; imaps_port=""; cert=""; key=""; users=(); extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --imap-port) imap_port=${2:?}; shift 2 ;;
            --imaps-port) imaps_port=${2:?}; shift 2 ;;
            --cert) cert=${2:?}; shift 2 ;;
            --key) key=${2:?}; shift 2 ;;
            --user) users+=("${2:?}"); shift 2 ;;
            --conf) extra+=("${2:?}"); shift 2 ;;
            *) die "unknown option $1 (see the header of $0)" ;;
        esac
    done
    [ -n "$imap_port" ] || [ -n "$imaps_port" ] || die "give --imap-port and/or --imaps-port"
    [ ${#users[@]} -gt 0 ] || die "give at least one --user NAME:PASSWORD"
    if [ -n "$imaps_port" ] || [ -n "$cert" ]; then
        [ -r "$cert" ] && [ -r "$key" ] || die "TLS needs readable --cert and --key files"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ${#dir} -le 80 ] || die "$dir is too long (${#dir} bytes): socket paths below it would exceed 108 bytes"
    running && die "a sandbox is already running in $dir (pid $(master_pid))"
    mkdir -p "$dir/run" "$dir/state" "$dir/mail"
    : > "$dir/dovecot.log"

    # Who owns the mail. As root, Dovecot refuses to run mail processes as
    # uid 0, so mail belongs to nobody; as a normal user, to that user, and
    # the internal/login users must then be that user too.
    if [ "$(id -u)" = 0 ]; then
        mail_user=nobody; mail_group=$(id -gn nobody 2>/dev/null || echo nogroup)
        internal_user=dovecot; login_user=dovenull
        id dovecot >/dev/null 2>&1 || internal_user=nobody
        id dovenull >/dev/null 2>&1 || login_user=nobody
        internal_group=$(id -gn "$internal_user")
        chroot_line="# default chroot"
    else
        mail_user=$(id -un); mail_group=$(id -gn)
        internal_user=$mail_user; login_user=$mail_user; internal_group=$mail_group
        chroot_line="chroot ="
    fi
    mail_uid=$(id -u "$mail_user"); mail_gid=$(getent group "$mail_group" | cut -d: -f3)

    : > "$dir/passwd"
    for u in "${users[@]}"; do
        name=${u%%:*}; pass=${u#*:}
        [ "$name" != "$u" ] && [ -n "$name" ] && [ -n "$pass" ] || die "--user wants NAME:PASSWORD, got '$name:…'"
        case "$pass" in *:*) die "a sandbox password may not contain ':'" ;; esac
        echo "$name:{PLAIN}$pass::::::" >> "$dir/passwd"
        mkdir -p "$dir/mail/$name/cur" "$dir/mail/$name/new" "$dir/mail/$name/tmp"
    done
    chmod 600 "$dir/passwd"
    # The auth process (internal user) reads it.
    [ "$(id -u)" = 0 ] && chown "$internal_user" "$dir/passwd"
    # The mail processes run as the mail user and must reach DIR/mail.
    chmod 755 "$dir"
    chown -R "$mail_uid:$mail_gid" "$dir/mail"

    if [ -n "$cert" ]; then
        ssl="ssl = yes
ssl_cert = <$(readlink -f "$cert")
ssl_key = <$(readlink -f "$key")
ssl_min_protocol = TLSv1.2"
    else
        ssl="ssl = no"
    fi
    listeners=""
    [ -n "$imap_port" ] && listeners+="  inet_listener imap {
    port = $imap_port
  }
"
    [ -n "$imaps_port" ] && listeners+="  inet_listener imaps {
    port = $imaps_port
    ssl = yes
  }
"
    # Both listeners must be named so that the defaults (143, 993) are replaced.
    [ -z "$imap_port" ] && listeners+="  inet_listener imap {
    port = 0
  }
"
    [ -z "$imaps_port" ] && listeners+="  inet_listener imaps {
    port = 0
  }
"

    cat > "$dir/dovecot.conf" <<CONF
# Generated by dovecot-sandbox.sh: a private test instance.
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
instance_name = sandbox-$(basename "$dir")
protocols = imap
listen = 127.0.0.1
$ssl
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = $internal_user
default_internal_group = $internal_group
default_login_user = $login_user
first_valid_uid = $mail_uid
first_valid_gid = $mail_gid
mail_location = maildir:$dir/mail/%u
mail_fsync = never
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/mail/%u
}
service imap-login {
$listeners  $chroot_line
}
service imap {
  $chroot_line
}
service anvil {
  $chroot_line
}
CONF
    for line in "${extra[@]}"; do echo "$line" >> "$dir/dovecot.conf"; done

    if ! "$DOVECOT" -c "$dir/dovecot.conf" 2>>"$dir/dovecot.log"; then
        show_log; die "dovecot failed to start"
    fi
    for p in $imap_port $imaps_port; do
        ok=""
        for _ in $(seq 1 100); do
            if port_open "$p"; then ok=1; break; fi
            running || break
            sleep 0.1
        done
        if [ -z "$ok" ]; then
            show_log
            "$0" stop "$dir" >/dev/null 2>&1 || true
            die "port $p on 127.0.0.1 did not accept connections within 10 s"
        fi
    done
    echo "dovecot-sandbox: running in $dir (pid $(master_pid))${imap_port:+, imap 127.0.0.1:$imap_port}${imaps_port:+, imaps 127.0.0.1:$imaps_port}"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    pid=$(master_pid 2>/dev/null) || exit 0
    if [ "${1:-}" = "--now" ]; then
        # Children by parent pid: only this sandbox's processes.
        kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
        kill -KILL "$pid" $kids 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || exit 0
            sleep 0.1
        done
        exit 0
    fi
    kill -TERM "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    ;;
status)
    running
    ;;
*)
    usage
    ;;
esac
