#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# scripts/profile, inside the VM: each RUN (see there) under perf record
# -a, then perf report by process and by function, with sample counts;
# with --syms LIST (function names, comma-separated) first, also the
# samples of each of them by offset into it, for objdump on the host;
# with --callers LIST, each of them with the call chains that reached it
# (recorded with -g, which costs samples of its own).

set -u
ip() { /usr/bin/ip "$@"; }

/selftests/zcopy/setup_net.sh >/dev/null || { echo "profile: no network"; exit 1; }
echo 0 >/proc/sys/kernel/kptr_restrict
PORT=21000
syms=
callers=
graph=
while [ $# -gt 0 ]; do
	case $1 in
	--syms) syms=$(echo "$2" | tr , ' ') ;;
	--callers) callers=$(echo "$2" | tr , ' ') graph=1 ;;
	*) break ;;
	esac
	shift 2
done
esc=$(printf '\033')
# The boot's first connect() seeds inet's port-perturbation table (256 KiB
# of random bytes, ChaCha20's work): here, not in the first run's samples.
PORT=$((PORT + 1))
zcrecv --listen "127.0.0.1:$PORT" --method read --timeout 30 >/dev/null 2>&1 &
zcsend --connect "127.0.0.1:$PORT" --method write --msg-size 65536 --bytes 1048576 \
	>/dev/null 2>&1
wait $!
for run in "$@"; do
	IFS=: read -r name path size bytes tx rx args <<EOT
$run
EOT
	case $path in
	nic) ns=peer addr=198.18.0.2 ;;
	nic4148) ns=peer addr=198.18.2.2 ;;
	veth) ns=vpeer addr=198.18.1.2 ;;
	*) echo "profile: $name: unknown path '$path'"; exit 1 ;;
	esac
	PORT=$((PORT + 1))
	ip netns exec $ns zcrecv --listen "$addr:$PORT" --method "$rx" --timeout 60 --json \
		>/tmp/rx.json 2>/tmp/rx.err &
	rpid=$!
	sleep 0.3
	# shellcheck disable=SC2046 # the extra arguments, split on commas
	perf record -q -a ${graph:+-g} -F 4000 -o "/tmp/$name.data" -- \
		zcsend --connect "$addr:$PORT" --method "$tx" --msg-size "$size" --bytes "$bytes" \
		--stamp --json $(echo "${args:-}" | tr , ' ') >/tmp/tx.json 2>/tmp/tx.err
	txs=$?
	wait $rpid
	rxs=$?
	echo "=== $name: $path, $size-byte sends of $bytes bytes, $tx to $rx (status $txs, $rxs)"
	cat /tmp/tx.json /tmp/rx.json
	# perf colours its figures on the console: not in the report.
	perf report -q -n -i "/tmp/$name.data" --stdio --no-children -g none --sort comm 2>/dev/null | sed "s/$esc\[[0-9;]*m//g"
	perf report -q -n -i "/tmp/$name.data" --stdio --no-children -g none --sort sym 2>/dev/null |
		sed "s/$esc\[[0-9;]*m//g" | head -n 300
	for sym in $syms; do
		echo "--- $name: samples of $sym by offset"
		# perf script prints no symbol without the address beside it.
		perf script -i "/tmp/$name.data" -F ip,sym,symoff 2>/dev/null |
			awk '{ print $2 }' | grep -E "^$sym\+0x" | sort | uniq -c | sort -rn | head -n 60
	done
	for sym in $callers; do
		echo "--- $name: call chains to $sym"
		perf report -q -n -i "/tmp/$name.data" --stdio --no-children -S "$sym" \
			-g caller,0.5,callee --percent-limit 0 2>/dev/null |
			sed "s/$esc\[[0-9;]*m//g" | head -n 120
	done
done
