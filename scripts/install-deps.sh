#!/usr/bin/env bash
# Installs the Debian packages Gannet's build and tests need, if any is missing:
# libclang-dev (RocksDB's bindings), swaks and curl (test clients), python3, dnsmasq
# (the DNS server of the delivery tests), Debian's aiosmtpd (their smart host) and xz-utils
# (scripts/unpack-corpus.sh unpacks the test corpus, tests/corpus.tar.xz), and ClamAV's
# clamd (clamav-daemon; the antivirus tests start their own with their own config),
# chromium (the admin console's browser test) and iproute2 (`ip`, for the reverse-DNS
# test's network namespace); for the appliance image (image/build, image/test): mmdebstrap
# (with uidmap and arch-test), fdisk, dosfstools, mtools, syslinux, systemd-boot-efi, kmod,
# ovmf and qemu-system-x86.
# Postfix (for smtp-source / the peer benchmark) is installed only with --bench.
set -euo pipefail
pkgs=(libclang-dev swaks curl openssl fetchmail isync spamassassin python3 python3-venv ca-certificates dnsmasq-base python3-aiosmtpd xz-utils clamav-daemon chromium iproute2
    mmdebstrap uidmap arch-test fdisk dosfstools mtools syslinux syslinux-common systemd-boot-efi kmod e2fsprogs ovmf qemu-system-x86)
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
    # ClamAV: freshclam has no network here and the tests run a clamd of their own, so
    # neither the freshclam daemon nor the system's clamd is to run; no service starts
    # during the install (a policy-rc.d that refuses, unless the machine has one).
    echo "clamav-freshclam clamav-freshclam/autoupdate_freshclam select manual" | $SUDO debconf-set-selections
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    $SUDO apt-get update -q >/dev/null
    # Debian's qemu-system-x86 would remove the machine's newer qemu-utils: take
    # bookworm's with it.
    extra=()
    if [[ " ${missing[*]} " == *" qemu-system-x86 "* ]]; then
        extra=(qemu-utils/bookworm --allow-downgrades)
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" "${extra[@]}" >/dev/null
    # Whatever the packages enabled at boot, the system's clamd and freshclam stay off.
    for s in clamav-daemon clamav-freshclam; do
        if [ -e "/etc/init.d/$s" ]; then
            $SUDO update-rc.d "$s" disable >/dev/null 2>&1 || true
        fi
        if [ -d /run/systemd/system ]; then
            $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
        fi
    done
fi
# Playwright (PyPI) for the admin console's browser test and prometheus_client (its
# /metrics test), in a venv of its own under target/. No browser is downloaded: the test
# drives Debian's chromium.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/browser-venv"
if ! "$venv/bin/python" -c "import playwright, prometheus_client" 2>/dev/null; then
    echo "installing playwright and prometheus_client into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "playwright>=1.40,<2" "prometheus_client>=0.17"
fi
