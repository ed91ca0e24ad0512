#!/usr/bin/env bash
# make bench: bin/ietd against Debian's tgtd on equal sparse files over
# 127.0.0.1, alternating runs, medians, ratios, CPU per GB and peak RSS.
# The harness is testdata/bench/bench.py (its docstring lists the BENCH_*
# environment knobs: BENCH_QUICK=1, BENCH_OUT, BENCH_ONLY, BENCH_ROUNDS, ...).
# Installs tgt, qemu-utils, qemu-block-extra and libiscsi-bin when missing and
# root. Never fails on a number: only when a daemon cannot start.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
need=()
command -v tgtd >/dev/null 2>&1 || need+=(tgt)
command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
command -v iscsi-perf >/dev/null 2>&1 || need+=(libiscsi-bin)
if [ -d /usr/lib/x86_64-linux-gnu/qemu ] || command -v qemu-img >/dev/null 2>&1; then
	ls /usr/lib/*/qemu/block-iscsi.so >/dev/null 2>&1 || need+=(qemu-block-extra)
fi
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: ${need[*]}"
		timeout 600 apt-get update -qq
		DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${need[@]}" >/dev/null
	else
		echo "bench: missing ${need[*]} (install them, or run as root)" >&2
		exit 1
	fi
fi
export PATH="$PATH:/usr/local/go/bin"
exec timeout --kill-after=30 "${BENCH_TIMEOUT:-3600}" python3 testdata/bench/bench.py
