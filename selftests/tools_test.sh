#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The tools against the real module, in the VM (the host's
# selftests/host/tools_offline.sh covers what needs no module): zcstat once,
# as JSON and refreshing; zcsend and zcrecv in each zcopy mode, over
# loopback, veth to netns vpeer and e1000e to netns peer, and zcproxy
# between netns peer and netns far in each of its methods, every byte
# verified against the pattern, the checksums of both ends compared, and
# what each tool's ledger says about the run checked against the path:
# zero-copy over e1000e, mapped over veth, copied where it must be.
# Output: TAP.

ip() { /usr/bin/ip "$@"; }

BYTES=4194304
tmp=$(mktemp -d)
port=7300
. "$(dirname "$0")/tap.sh"

# A failed test, with the log of what it ran.
not_ok() {
	sed 's/^/# /' "$tmp/log" 2>/dev/null
	tap_fail "$@"
}

# jnum FILE KEY: the number after "KEY": in the JSON object in FILE.
jnum() { sed -n "s/.*\"$2\": \([0-9][0-9]*\).*/\1/p" "$1"; }
# jstr FILE KEY: the string or literal after "KEY":.
jstr() { sed -n "s/.*\"$2\": \"\{0,1\}\([a-z0-9]*\).*/\1/p" "$1"; }

# transfer NETNS DEST "SEND ARGS" "RECV ARGS": one checked stream of $BYTES
# from this namespace to zcrecv in NETNS (- for this one); 0 when both ends
# succeed, agree on the checksum and the receiver verified every byte.
transfer() {
	ns=$1 dest=$2 sargs=$3 rargs=$4
	port=$((port + 1))
	case $dest in
	*:*) addr="[$dest]:$port" ;;
	*) addr="$dest:$port" ;;
	esac
	: >"$tmp/recv.err"
	if [ "$ns" = - ]; then
		# shellcheck disable=SC2086
		zcrecv --listen "$addr" --json --checksum --verify $rargs \
			>"$tmp/recv.out" 2>"$tmp/recv.err" &
	else
		# shellcheck disable=SC2086
		ip netns exec "$ns" zcrecv --listen "$addr" --json --checksum --verify $rargs \
			>"$tmp/recv.out" 2>"$tmp/recv.err" &
	fi
	pid=$!
	i=0
	until grep -q 'listening on' "$tmp/recv.err"; do
		i=$((i + 1))
		[ $i -lt 100 ] && kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	# shellcheck disable=SC2086
	zcsend --connect "$addr" --bytes $BYTES --json --checksum $sargs \
		>"$tmp/send.out" 2>"$tmp/send.err"
	src=$?
	wait $pid
	rrc=$?
	{
		echo "zcsend $sargs -> $src"; cat "$tmp/send.err" "$tmp/send.out"
		echo "zcrecv $rargs -> $rrc"; cat "$tmp/recv.err" "$tmp/recv.out"
	} >"$tmp/log"
	[ $src -eq 0 ] && [ $rrc -eq 0 ] &&
		[ "$(jnum "$tmp/send.out" bytes)" = $BYTES ] &&
		[ "$(jstr "$tmp/recv.out" verified)" = true ] || return 1
	# A datagram may be lost (and is then counted): each that came was
	# verified where it belongs, but only a stream has one checksum. None
	# comes late or twice here, as one sent from a buffer reused too early
	# would.
	case $sargs in
	*--udp*) gt0 "$(jnum "$tmp/recv.out" bytes)" && eq0 "$(jnum "$tmp/recv.out" reordered)" ;;
	*) [ "$(jnum "$tmp/recv.out" bytes)" = $BYTES ] &&
		[ -n "$(jstr "$tmp/send.out" checksum)" ] &&
		[ "$(jstr "$tmp/send.out" checksum)" = "$(jstr "$tmp/recv.out" checksum)" ] ;;
	esac
}

# until_listening FILE PID: wait for the tool to say it listens (5 s at most).
until_listening() {
	i=0
	until grep -q 'listening on' "$1"; do
		i=$((i + 1))
		[ $i -lt 100 ] && kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
}

# proxied METHOD: $BYTES from zcsend in netns peer, across eth3 -> eth2 (MTU
# 4148, header split), through zcproxy --method METHOD here, across eth4 ->
# eth5 to zcrecv in netns far; 0 when all three succeed, the receiver
# verified every byte and the checksums of both ends agree.
proxied() {
	m=$1
	port=$((port + 2))
	: >"$tmp/recv.err"
	: >"$tmp/proxy.err"
	ip netns exec far zcrecv --listen "198.18.3.2:$port" --json --checksum --verify \
		>"$tmp/recv.out" 2>"$tmp/recv.err" &
	rpid=$!
	until_listening "$tmp/recv.err" $rpid
	zcproxy --method "$m" --json --timeout 30 "198.18.2.1:$((port + 1))" "198.18.3.2:$port" \
		>"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	ppid=$!
	until_listening "$tmp/proxy.err" $ppid
	ip netns exec peer zcsend --connect "198.18.2.1:$((port + 1))" --bytes $BYTES --json \
		--checksum --method write >"$tmp/send.out" 2>"$tmp/send.err"
	src=$?
	wait $ppid
	prc=$?
	wait $rpid
	rrc=$?
	{
		echo "zcsend -> $src"; cat "$tmp/send.err" "$tmp/send.out"
		echo "zcproxy --method $m -> $prc"; cat "$tmp/proxy.err" "$tmp/proxy.out"
		echo "zcrecv -> $rrc"; cat "$tmp/recv.err" "$tmp/recv.out"
	} >"$tmp/log"
	[ $src -eq 0 ] && [ $prc -eq 0 ] && [ $rrc -eq 0 ] &&
		[ "$(jnum "$tmp/proxy.out" up_bytes)" = $BYTES ] &&
		[ "$(jstr "$tmp/recv.out" verified)" = true ] &&
		[ "$(jnum "$tmp/recv.out" bytes)" = $BYTES ] &&
		[ "$(jstr "$tmp/send.out" checksum)" = "$(jstr "$tmp/recv.out" checksum)" ]
}

# check NAME CONDITION...: one test, the transfer and then CONDITION.
check() {
	name=$1
	shift
	if [ $xfer -eq 0 ] && "$@"; then
		tap_ok "$name"
	else
		not_ok "$name"
	fi
}
gt0() { [ "${1:-0}" -gt 0 ]; }
eq0() { [ "${1:-1}" -eq 0 ]; }
# Most of the payload: at least 9 bytes in 10.
most() { [ "$((${1:-0} * 10))" -ge "$((BYTES * 9))" ]; }
most_no_cow() { most "$1" && eq0 "$2"; }

tap_plan 24

if ! "$(dirname "$0")/setup_net.sh" >"$tmp/log" 2>&1; then
	echo "Bail out! no test network"
	exit 1
fi

# ---- zcstat ----
zcstat >"$tmp/log" 2>&1
if [ $? -eq 0 ] && grep -q '^zcopy ABI [0-9]' "$tmp/log" &&
   grep -q 'pages_pinned ' "$tmp/log"; then
	tap_ok "zcstat: the ABI, the features and the ledger"
else
	not_ok "zcstat: the ABI, the features and the ledger"
fi
zcstat --json >"$tmp/log" 2>&1
if [ $? -eq 0 ] && [ "$(wc -l <"$tmp/log")" -eq 1 ] &&
   grep -q '^{"abi_version": [0-9]*, "page_size": [0-9]*, "features": \[.*\], "ledger": {.*"pages_pinned": [0-9]*.*}}$' \
	"$tmp/log"; then
	tap_ok "zcstat --json: one object with abi_version, features and the ledger"
else
	not_ok "zcstat --json: one object with abi_version, features and the ledger"
fi
zcstat --json --interval 1 --count 2 >"$tmp/log" 2>&1
if [ $? -eq 0 ] && [ "$(grep -c '^{"abi_version"' "$tmp/log")" -eq 2 ]; then
	tap_ok "zcstat --interval 1 --count 2: two samples, a second apart"
else
	not_ok "zcstat --interval 1 --count 2: two samples, a second apart"
fi

# ---- pinned send ----
transfer peer 198.18.0.2 "--method zcopy" "--method read"; xfer=$?
check "zcopy over e1000e: verified, the records and the ledger say zero-copy" \
	most "$(jnum "$tmp/send.out" tx_zerocopy_bytes)"
transfer peer 198.18.0.2 "--method zcopy --batch 8 --msg-size 4096" "--method read"; xfer=$?
check "zcopy --batch 8 over e1000e: verified, zero-copy" \
	most "$(jnum "$tmp/send.out" tx_zerocopy_bytes)"
transfer peer 198.18.0.2 "--method zcopy-fixed" "--method read"; xfer=$?
check "zcopy-fixed over e1000e: verified, zero-copy" \
	most "$(jnum "$tmp/send.out" tx_zerocopy_bytes)"
transfer peer fd00:5a::2 "--method zcopy --msg-size 100000" "--method read"; xfer=$?
check "zcopy over e1000e, IPv6, unaligned 100000-byte sends: verified, zero-copy" \
	most "$(jnum "$tmp/send.out" tx_zerocopy_bytes)"
transfer - 127.0.0.1 "--method zcopy" "--method read"; xfer=$?
check "zcopy over loopback: verified, the ledger says copied for loopback" \
	most "$(jnum "$tmp/send.out" tx_copied_loopback)"
transfer peer 198.18.0.2 "--udp --method zcopy --msg-size 1400" "--udp --timeout 3"; xfer=$?
check "zcopy UDP over e1000e, 1400-byte datagrams: verified, copied as short sends" \
	most "$(jnum "$tmp/send.out" tx_copied_small)"

# ---- pool send ----
transfer peer 198.18.0.2 "--method zcopy-pool --notify" "--method read"; xfer=$?
check "zcopy-pool --notify over e1000e: verified, no copy-on-write copy" \
	eq0 "$(jnum "$tmp/send.out" cow_copies)"
transfer peer 198.18.0.2 "--method zcopy-pool --notify --batch 8 --msg-size 4096" \
	"--method read"; xfer=$?
check "zcopy-pool --notify --batch 8 over e1000e: verified, zero-copy, no copy-on-write copy" \
	most_no_cow "$(jnum "$tmp/send.out" tx_zerocopy_bytes)" "$(jnum "$tmp/send.out" cow_copies)"
transfer vpeer 198.18.1.2 "--method zcopy-pool" "--method read"; xfer=$?
check "zcopy-pool over veth: verified, every byte counted as a pool send" \
	[ "$(jnum "$tmp/send.out" pool_send_bytes)" = $BYTES ]

# ---- receive mapping ----
ip -n vpeer link set veth1 mtu 61512 && ip link set veth0 mtu 61512
transfer vpeer 198.18.1.2 "--method zcopy-pool" "--method zcopy-recv"; xfer=$?
check "zcopy-pool -> zcopy-recv over veth, 61512 MTU: verified, mostly mapped" \
	most "$(jnum "$tmp/recv.out" mapped_bytes)"
ip -n vpeer link set veth1 mtu 1500 && ip link set veth0 mtu 1500
transfer vpeer 198.18.1.2 "--method write" "--method zcopy-recv"; xfer=$?
check "write -> zcopy-recv over veth: verified, copied (send() data is not mappable)" \
	[ "$(jnum "$tmp/recv.out" copied_bytes)" = $BYTES ]
transfer peer 198.18.0.2 "--method zcopy-pool" "--method zcopy-recv"; xfer=$?
check "zcopy-pool -> zcopy-recv over e1000e: verified, copied (the NIC's own buffers)" \
	eq0 "$(jnum "$tmp/recv.out" mapped_bytes)"
transfer - ::1 "--method zcopy-pool --notify" "--method zcopy-recv"; xfer=$?
check "zcopy-pool --notify -> zcopy-recv over IPv6 loopback: verified" true
port=$((port + 1))
# The timeout counts from listen() too: 5 s leaves nc time to start and
# connect on a loaded host (2 s did not, once).
timeout 30 zcrecv --listen "127.0.0.1:$port" --method zcopy-recv --timeout 5 \
	>"$tmp/recv.out" 2>"$tmp/recv.err" &
pid=$!
until_listening "$tmp/recv.err" $pid
sleep 15 2>/dev/null | nc 127.0.0.1 $port 2>/dev/null &
ncpid=$!
wait $pid
rc=$?
kill $ncpid 2>/dev/null
{ echo "zcrecv -> $rc"; cat "$tmp/recv.err"; } >"$tmp/log"
if [ $rc -eq 1 ] && grep -q "no data for 5 s" "$tmp/recv.err"; then
	tap_ok "zcopy-recv --timeout 5 from a silent peer: status 1, no data for 5 s"
else
	not_ok "zcopy-recv --timeout 5 from a silent peer: status 1, no data for 5 s"
fi

# Datagrams of two pages come to zcopy-recv as two descriptors each: one
# that comes late fills all of its gap, nothing stays counted as lost.
port=$((port + 1))
zcrecv --listen "127.0.0.1:$port" --output "$tmp/stream" >/dev/null 2>"$tmp/recv.err" &
pid=$!
until_listening "$tmp/recv.err" $pid
zcsend --connect "127.0.0.1:$port" --bytes 65536 >/dev/null 2>&1
wait $pid
for i in 0 1 3 2 4 5 6 7; do
	dd if="$tmp/stream" bs=8192 skip=$i count=1 2>/dev/null
done >"$tmp/dgrams"
port=$((port + 1))
timeout 20 zcrecv --listen "127.0.0.1:$port" --udp --verify --method zcopy-recv --json \
	--timeout 3 >"$tmp/recv.out" 2>"$tmp/recv.err" &
pid=$!
until_listening "$tmp/recv.err" $pid
zcsend --connect "127.0.0.1:$port" --udp --msg-size 8192 - <"$tmp/dgrams" \
	>"$tmp/send.out" 2>"$tmp/send.err"
wait $pid
rc=$?
{ echo "zcrecv -> $rc"; cat "$tmp/send.err" "$tmp/recv.err" "$tmp/recv.out"; } >"$tmp/log"
if [ $rc -eq 0 ] && [ "$(jstr "$tmp/recv.out" verified)" = true ] &&
   [ "$(jnum "$tmp/recv.out" bytes)" = 65536 ] && [ "$(jnum "$tmp/recv.out" reordered)" = 1 ] &&
   [ "$(jnum "$tmp/recv.out" lost_bytes)" = 0 ]; then
	tap_ok "zcopy-recv --udp --verify, 8 KiB datagrams, two swapped: one reordered, none lost"
else
	not_ok "zcopy-recv --udp --verify, 8 KiB datagrams, two swapped: one reordered, none lost"
fi

# ---- across header-split NICs ----
transfer peer 198.18.2.2 "--method zcopy-pool --notify" "--method zcopy-recv"; xfer=$?
check "zcopy-pool --notify -> zcopy-recv over e1000e at MTU 4148: verified, mapped" \
	most "$(jnum "$tmp/recv.out" mapped_bytes)"

# ---- zcproxy: client, proxy and server each in a netns of its own ----
proxied copy; xfer=$?
check "zcproxy --method copy: verified end to end, nothing forwarded" \
	eq0 "$(jnum "$tmp/proxy.out" fwd_bytes)"
proxied splice; xfer=$?
check "zcproxy --method splice: verified end to end" true
proxied zcopy; xfer=$?
check "zcproxy --method zcopy: verified, every byte forwarded without a copy" \
	[ "$(jnum "$tmp/proxy.out" fwd_zerocopy_bytes)" = $BYTES ]
check "zcproxy --method zcopy: received into the NIC's pages, mapped" \
	most "$(jnum "$tmp/proxy.out" rx_bytes_mapped)"

# ---- nothing left behind ----
zcstat --json >"$tmp/log" 2>&1
if [ "$(jnum "$tmp/log" pages_pinned)" = 0 ] && [ "$(jnum "$tmp/log" sends_in_flight)" = 0 ] &&
   [ "$(jnum "$tmp/log" rx_slots_used)" = 0 ] && [ "$(jnum "$tmp/log" pool_pages)" = 0 ] &&
   [ "$(jnum "$tmp/log" fwd_slots_held)" = 0 ]; then
	tap_ok "afterwards the ledger shows nothing pinned, in flight, mapped or pooled"
else
	not_ok "afterwards the ledger shows nothing pinned, in flight, mapped or pooled"
fi

rm -rf "$tmp"
tap_done
