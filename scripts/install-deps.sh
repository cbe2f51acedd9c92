#!/usr/bin/env bash
# Installs the Debian packages Gannet's build and tests need, if any is missing:
# libclang-dev (RocksDB's bindings), swaks and curl (test clients), python3, dnsmasq
# (the DNS server of the delivery tests), Debian's aiosmtpd (their smart host) and xz-utils
# (scripts/unpack-corpus.sh unpacks the test corpus, tests/corpus.tar.xz).
# Postfix (for smtp-source / the peer benchmark) is installed only with --bench.
set -euo pipefail
pkgs=(libclang-dev swaks curl openssl fetchmail isync spamassassin python3 ca-certificates dnsmasq-base python3-aiosmtpd xz-utils)
if [ "${1:-}" = "--bench" ]; then
    pkgs+=(postfix)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    # Postfix asks questions at install time: answer them, and keep it local-only.
    echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
    echo "postfix postfix/mailname string appliance.test" | $SUDO debconf-set-selections
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
