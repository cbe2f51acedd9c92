#!/usr/bin/env bash
# Postfix -> amavisd-new -> clamd: the peers' way of screening mail for viruses.
#
# usage: setup/amavis.sh start|stop|status|install
#
# "install" (and "start"):
#   - installs amavisd-new (and postfix) with apt-get if missing; Debian's own
#     amavis, clamav-daemon and clamav-freshclam services are not started
# "start":
#   - runs amavisd-new as a daemon (user amavis) with its own configuration,
#     $PEER_WORK/amavis/amavisd.conf: Debian's stock conf.d files as shipped, then
#       virus checks only (@bypass_spam_checks_maps = (1), no SpamAssassin),
#       @av_scanners = ClamAV-clamd through $CLAMD_SOCKET (CONTSCAN of the
#         message's parts in amavis's temp directory: clamd must be able to read
#         them, as root does, and user amavis must be able to connect),
#       listening on 127.0.0.1:10024, re-injecting to 127.0.0.1:10025,
#       $AMAVIS_SERVERS processes (default 2, amavis's default),
#       logs to $PEER_WORK/amavis/home/amavis.log, pid file
#       $PEER_WORK/amavis/home/amavisd.pid, home (temp, db, quarantine)
#       $PEER_WORK/amavis/home,
#       final_virus_destiny D_DISCARD (Debian's default, kept): the message has
#         already been accepted by Postfix (250) when amavis sees it, so a virus
#         cannot be refused in the SMTP dialogue; it is not delivered and is
#         quarantined in $PEER_WORK/amavis/home/virusmails (no notice to anyone);
#         D_REJECT would bounce it to the (often forged) sender instead
#   - starts the peer Postfix (setup/postfix.sh) with the content filter
#     smtp-amavis:[127.0.0.1]:10024 and the re-injection smtpd on 127.0.0.1:10025
# "stop": stops Postfix and amavisd, puts back /etc/postfix/{main,master}.cf
#   (postfix.sh restore); /etc/amavis is never changed.
#
# env: PEER_WORK (default /tmp/peer-bench), CLAMD_SOCKET (default
#      /var/run/clamav/clamd.ctl), AMAVIS_SERVERS (2), AMAVIS_LOG_LEVEL (0; 2 logs
#      TIMING lines), LISTEN (Postfix's, postfix.sh), AMAVIS_CHECKS (virus, the
#      default: as above; spam: SpamAssassin instead (its stock rules, local tests
#      only: no DNS), no virus checks and no clamd needed)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export PEER_WORK=${PEER_WORK:-/tmp/peer-bench}
CLAMD_SOCKET=${CLAMD_SOCKET:-/var/run/clamav/clamd.ctl}
AMAVIS_SERVERS=${AMAVIS_SERVERS:-2}
CHECKS=${AMAVIS_CHECKS:-virus}
A=$PEER_WORK/amavis          # root's: the configuration (amavisd refuses one it could write)
H=$A/home                     # amavis's: temp, db, quarantine, log, pid file
CONF=$A/amavisd.conf
PIDFILE=$H/amavisd.pid

listening() { ss -ltn | grep -q " 127.0.0.1:10024 "; }

stop_amavis() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$PIDFILE"
}

install_packages() {
    if ! command -v amavisd >/dev/null || ! command -v postfix >/dev/null; then
        # policy-rc.d (exit 101, as on this machine) keeps the packages' services from
        # starting; without one, the Debian services must be stopped by hand.
        echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            amavisd-new postfix >/dev/null
    fi
}

case "${1:-}" in
install)
    install_packages
    ;;
start)
    install_packages
    if [ "$CHECKS" = virus ]; then
        [ -S "$CLAMD_SOCKET" ] || { echo "no clamd socket at $CLAMD_SOCKET (CLAMD_SOCKET)" >&2; exit 1; }
        runuser -u amavis -- test -w "$CLAMD_SOCKET" ||
            { echo "user amavis cannot connect to $CLAMD_SOCKET (directories 711, LocalSocketMode 666)" >&2; exit 1; }
        checks="# viruses only
@bypass_spam_checks_maps = (1);
@bypass_virus_checks_maps = (0);"
    else
        checks="# SpamAssassin only (its stock rules), no network tests
@bypass_spam_checks_maps = (0);
@bypass_virus_checks_maps = (1);
\$sa_local_tests_only = 1;"
    fi
    stop_amavis
    mkdir -p "$H/tmp" "$H/db" "$H/virusmails"
    chown root:root "$A"
    chmod 755 "$A"
    chown amavis:amavis "$H" "$H/tmp" "$H/db" "$H/virusmails"
    # root-owned and not writable by amavis, or amavisd refuses it
    cat >"$CONF" <<CONF
use strict;
# Debian's stock configuration, as find_config_files would read it without -c
Amavis::Conf::include_config_files(
  Amavis::Util::find_config_files('/usr/share/amavis/conf.d', '/etc/amavis/conf.d'));

\$myhostname = 'appliance.test';
\$mydomain = 'example.test';
@local_domains_acl = ('example.test');

\$MYHOME = '$H';
\$TEMPBASE = "\$MYHOME/tmp";
\$ENV{TMPDIR} = \$TEMPBASE;
\$db_home = "\$MYHOME/db";
\$QUARANTINEDIR = "\$MYHOME/virusmails";
\$pid_file = '$PIDFILE';
\$lock_file = "\$MYHOME/amavisd.lock";
\$unix_socketname = "\$MYHOME/amavisd.sock";
\$DO_SYSLOG = 0;
\$LOGFILE = "\$MYHOME/amavis.log";
\$log_level = ${AMAVIS_LOG_LEVEL:-0};

\$max_servers = $AMAVIS_SERVERS;
\$inet_socket_bind = '127.0.0.1';
\$inet_socket_port = 10024;
@inet_acl = qw(127.0.0.1);
\$forward_method = 'smtp:[127.0.0.1]:10025';
\$notify_method = \$forward_method;

$checks
@av_scanners = (
  ['ClamAV-clamd',
    \&ask_daemon, ["CONTSCAN {}\n", '$CLAMD_SOCKET'],
    qr/\bOK\$/m, qr/\bFOUND\$/m,
    qr/^.*?: (?!Infected Archive)(.*) FOUND\$/m ],
);
@av_scanners_backup = ();
\$final_virus_destiny = D_DISCARD;   # quarantined in \$QUARANTINEDIR, not delivered
\$virus_admin = undef;               # no notices (they would go nowhere here)
\$spam_admin = undef;
1;
CONF
    chown root:root "$CONF"
    chmod 644 "$CONF"
    amavisd -c "$CONF" start >"$H/start.log" 2>&1 || { cat "$H/start.log" >&2; exit 1; }
    for _ in $(seq 300); do
        listening && break
        sleep 0.1
    done
    listening || { echo "amavisd is not listening on 127.0.0.1:10024" >&2; tail -n 20 "$H/amavis.log" >&2; exit 1; }
    CONTENT_FILTER='smtp-amavis:[127.0.0.1]:10024' FILTER_MAXPROC=$AMAVIS_SERVERS \
        "$here/postfix.sh" start
    ;;
stop)
    "$here/postfix.sh" restore
    stop_amavis
    ;;
status)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "amavisd running, pid $(cat "$PIDFILE")"
    else
        echo "amavisd not running"
    fi
    "$here/postfix.sh" status
    ;;
*)
    sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
