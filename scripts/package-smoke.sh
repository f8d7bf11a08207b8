#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the VM, for scripts/package-test: the packaged tools (in /pkg) against
# the DKMS-built module, across e1000e at MTU 4148: a pinned send, a pool
# send into a mapping receive, and zcstat. Output: TAP.
#
# Usage: package-smoke.sh SHA256    (of the DKMS-built zcopy.ko, uncompressed)

ip() { /usr/bin/ip "$@"; }
. /selftests/zcopy/tap.sh
tmp=$(mktemp -d)
port=7400
BYTES=4194304

jnum() { sed -n "s/.*\"$2\": \([0-9][0-9]*\).*/\1/p" "$1"; }
jstr() { sed -n "s/.*\"$2\": \"\{0,1\}\([a-z0-9]*\).*/\1/p" "$1"; }
# Most of the payload: at least 9 bytes in 10.
most() { [ "${1:-0}" -ge $((BYTES * 9 / 10)) ]; }

# transfer "SEND ARGS" "RECV ARGS": $BYTES from /pkg/zcsend in netns peer to
# /pkg/zcrecv here on eth2, verified, with the checksums of both ends equal.
transfer() {
	port=$((port + 1))
	: >"$tmp/recv.err"
	# shellcheck disable=SC2086
	/pkg/zcrecv --listen 198.18.2.1:$port --json --checksum --verify $2 \
		>"$tmp/recv.out" 2>"$tmp/recv.err" &
	pid=$!
	i=0
	until grep -q 'listening on' "$tmp/recv.err" || [ $i -ge 100 ]; do
		i=$((i + 1))
		sleep 0.05
	done
	# shellcheck disable=SC2086
	ip netns exec peer /pkg/zcsend --connect 198.18.2.1:$port --bytes $BYTES \
		--json --checksum $1 >"$tmp/send.out" 2>"$tmp/send.err"
	src=$?
	wait $pid
	rrc=$?
	cat "$tmp/send.err" "$tmp/send.out" "$tmp/recv.err" "$tmp/recv.out" | sed 's/^/# /'
	[ $src -eq 0 ] && [ $rrc -eq 0 ] &&
		[ "$(jstr "$tmp/recv.out" verified)" = true ] &&
		[ "$(jnum "$tmp/recv.out" bytes)" = $BYTES ] &&
		[ "$(jstr "$tmp/send.out" checksum)" = "$(jstr "$tmp/recv.out" checksum)" ]
}

check() {
	name=$1
	shift
	if "$@"; then tap_ok "$name"; else tap_fail "$name"; fi
}

want_sum=$1
tap_plan 5
/selftests/zcopy/setup_net.sh >/dev/null 2>&1
check "the module loaded is DKMS's build" \
	eval 'grep -q "^zcopy " /proc/modules &&
	      [ "$(sha256sum "$ZCOPY_KO" | cut -d" " -f1)" = "$want_sum" ]'
check "/dev/zcopy has the udev rule's mode" \
	[ "$(stat -c %a /dev/zcopy)" = 666 ]
check "pinned send (zcsend --method zcopy): verified, zero-copy" \
	eval 'transfer "--method zcopy" "--method read" &&
	      most "$(jnum "$tmp/send.out" tx_zerocopy_bytes)"'
check "pool send into a mapping receive: verified, mapped" \
	eval 'transfer "--method zcopy-pool --notify" "--method zcopy-recv" &&
	      most "$(jnum "$tmp/recv.out" mapped_bytes)"'
/pkg/zcstat --json >"$tmp/stat" 2>&1
sed 's/^/# /' "$tmp/stat"
check "zcstat: the ledger counts what was sent" \
	[ "$(jnum "$tmp/stat" send_bytes)" -ge $((2 * BYTES)) ]
tap_done
