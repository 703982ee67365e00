#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine:
# a Rust toolchain is assumed (cargo on PATH); Dovecot (the real IMAP server the
# tests and the demo talk to) and systemd-analyze (to verify the unit file) come
# from Debian's packages. Does nothing when everything is already there.
set -euo pipefail

need=()
[ -x /usr/sbin/dovecot ] || command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if ((${#need[@]})); then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "install-deps: installing ${need[*]} (Debian packages)" >&2
    "${sudo[@]}" apt-get update -qq
    # policy-rc.d keeps Debian from starting the system-wide Dovecot: the tests
    # and the demo start their own private instances on loopback.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v cargo >/dev/null 2>&1 || { echo "install-deps: cargo is not on PATH; install Rust (rustup) first" >&2; exit 1; }
