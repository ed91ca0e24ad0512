#!/bin/sh
# Runs every go test -fuzz target briefly (FUZZTIME each, default 5s).
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime expires while a worker is busy
# (go.dev/issue/75804, fixed in Go 1.27). Such a run found nothing: no
# failing input is written. It is retried once; a run that writes a
# failing input, or fails any other way, fails at once.
set -u
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
log=$(mktemp "${TMPDIR:-/tmp}/ietd-fuzz.XXXXXX")
trap 'rm -f "$log"' EXIT
trap 'exit 130' INT TERM

for pkg in $($GO list ./...); do
	for f in $($GO test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
		echo "fuzz $pkg $f"
		try=1
		while :; do
			if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
				break
			fi
			if [ "$try" -lt 2 ] &&
				grep -q '^    context deadline exceeded$' "$log" &&
				! grep -q 'Failing input written' "$log"; then
				echo "  coordinator deadline race (go.dev/issue/75804), no failing input; retrying"
				try=$((try + 1))
				continue
			fi
			cat "$log"
			exit 1
		done
	done
done
