#!/bin/bash
# run.sh [BIN]: start ietd (default <repo>/bin/ietd) on 127.0.0.1:3399 with
# one 100M sparse write-back LUN and the bench's tuned limits (ietd's own
# defaults with RIG_PARAMS=default); the pid goes to $RIG_DIR/pid, the log
# to $RIG_DIR/ietd.log. RUNENV: extra environment (e.g. GOMAXPROCS=2); DBG:
# extra flags (e.g. "-d 3").
set -u
top=$(cd "$(dirname "$0")/../../.." && pwd)
D=${RIG_DIR:-/tmp/ietd-rig}
BIN=${1:-$top/bin/ietd}
mkdir -p "$D" && rm -rf "$D/st" && mkdir -p "$D/st"
truncate -s 100M "$D/lun"
limits="	MaxRecvDataSegmentLength 262144
	FirstBurstLength 262144
	MaxBurstLength 1048576"
[ "${RIG_PARAMS:-tuned}" = default ] && limits=
cat > "$D/ietd.conf" <<C
Target iqn.2026-12.test:rig
	Lun 0 Path=$D/lun,Type=fileio,IOMode=wb
$limits
C
# shellcheck disable=SC2086
env ${RUNENV:-} "$BIN" -f ${DBG:-} -c "$D/ietd.conf" -a 127.0.0.1 -p 3399 --pid-file "$D/st/ietd.pid" \
	--admin-socket "$D/st/adm.sock" --acl-dir "$D/st" --state-dir "$D/st/state" --proc-dir "$D/st/proc" \
	>"$D/ietd.log" 2>&1 &
echo $! >"$D/pid"
for _ in $(seq 50); do
	(echo >/dev/tcp/127.0.0.1/3399) 2>/dev/null && exit 0
	sleep 0.1
done
echo "ietd not listening (log $D/ietd.log)" >&2
exit 1
