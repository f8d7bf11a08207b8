#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# zctime, the bench's runner: the command's status passes through, and
# --kill-after, or a SIGTERM for zctime, stops the command (killed, status
# 0), with or without a pseudo-terminal. Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
zctime=$root/.cache/build/tools/bin/zctime
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$here/../tap.sh"

# run NAME WANT_RC JSON_KEY_VALUE... : the last zctime's status and report.
run() {
	local name=$1 want=$2 kv
	shift 2
	status=0
	[ "$rc" -eq "$want" ] || status=1
	for kv in "$@"; do
		grep -q "\"${kv%%=*}\": ${kv#*=}[,}]" "$tmp/err" || status=1
	done
	if [ $status -eq 0 ]; then
		tap_ok "$name"
	else
		echo "# status $rc"; sed 's/^/# /' "$tmp/err" "$tmp/out"
		tap_fail "$name"
	fi
}

tap_plan 5
if ! make -s -C "$root/tools" >"$tmp/out" 2>&1 || [ ! -x "$zctime" ]; then
	sed 's/^/# /' "$tmp/out"
	echo "Bail out! zctime does not build"
	exit 1
fi

"$zctime" -- sh -c 'exit 3' >"$tmp/out" 2>"$tmp/err"; rc=$?
run "the command's exit status passes through" 3 status=3 killed=false

timeout 20 "$zctime" --kill-after 1 -- sleep 15 >"$tmp/out" 2>"$tmp/err"; rc=$?
run "--kill-after 1: the command is stopped, status 0" 0 status=143 killed=true

timeout 20 "$zctime" --pty --kill-after 1 -- sh -c 'echo line; exec sleep 15' \
	>"$tmp/out" 2>"$tmp/err"; rc=$?
run "--pty --kill-after 1: stopped, its output copied" 0 status=143 killed=true
if grep -q '^line' "$tmp/out"; then
	tap_ok "--pty: the command's line is on zctime's stdout"
else
	tap_fail "--pty: the command's line is on zctime's stdout"
fi

# zctime alone is signalled: it has to stop the command itself.
"$zctime" -- sleep 15 >"$tmp/out" 2>"$tmp/err" &
pid=$!
sleep 0.5
kill -TERM $pid 2>/dev/null
wait $pid; rc=$?
run "a SIGTERM for zctime stops the command, status 0" 0 status=143 killed=true
tap_done
