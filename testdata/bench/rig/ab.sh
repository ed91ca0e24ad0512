#!/bin/bash
# ab.sh N COUNT ENV_A ENV_B: N alternating pairs of runs, a fresh daemon
# each, A with environment ENV_A and B with ENV_B (X=1 for none); prints
# the load's time, the daemon's CPU ticks (/proc/PID/stat utime+stime)
# and context switches (summed over /proc/PID/task/*/status).
# BINA/BINB: the binaries; LOADARGS: load.sh's SIZE r|w QD (default 4k w 32).
set -u
here=$(cd "$(dirname "$0")" && pwd)
D=${RIG_DIR:-/tmp/ietd-rig}
N=$1 C=$2 EA=$3 EB=$4
BINA=${BINA:-} BINB=${BINB:-${BINA:-}}
one() {
	RUNENV="$2" "$here/run.sh" "$3" || return
	p=$(cat "$D/pid")
	sleep 0.3
	# shellcheck disable=SC2086
	t=$("$here/load.sh" "$C" ${LOADARGS:-} | awk '{print $4}')
	s=$(awk '{print $14+$15}' "/proc/$p/stat")
	cs=$(cat /proc/"$p"/task/*/status | awk '/ctxt_switches/{s+=$2} END{print s}')
	kill "$p"
	for _ in $(seq 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	echo "$1 time=$t cpu=$s ctxsw=$cs"
}
for _ in $(seq "$N"); do
	one A "$EA" "$BINA"
	one B "$EB" "$BINB"
done
