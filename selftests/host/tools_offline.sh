#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Test zcsend and zcrecv on the host, over loopback (127.0.0.1 and ::1, ports
# chosen by the kernel): argument errors, every method pair that needs no
# module with every byte verified, UDP, the JSON report, and that a
# corrupted stream or a wrong checksum is caught. The zcopy methods are
# skipped without /dev/zcopy (and must then fail with a clear message).
# Output: TAP.

set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/.cache/build/tools/bin
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

SIZE=8M
SIZE_BYTES=8388608
. "$here/../tap.sh"

# result NAME: ok or not ok by the status of the last command, with its log.
result() {
	if [ "$status" -eq 0 ]; then
		tap_ok "$1"
	else
		sed 's/^/# /' "$tmp/log" 2>/dev/null
		tap_fail "$1"
	fi
}

# The JSON keys the tools' --help documents.
common_keys="tool method proto family bytes seconds mb_per_s cpu_user_s cpu_sys_s cpu_s cpu_s_per_gib page_faults busy_s ctx_switches ctx_preempted checksum zcopy"
send_keys="$common_keys send_calls completions completions_copied"
recv_keys="$common_keys recv_calls mapped_bytes copied_bytes verified datagrams lost_bytes reordered end"
proxy_keys="$common_keys up_bytes down_bytes calls"

# start_recv ADDR ARGS...: zcrecv in the background on ADDR:0; sets $port.
start_recv() {
	local addr=$1
	shift
	case $addr in
	*:*) addr="[$addr]" ;;
	esac
	: >"$tmp/recv.err"
	timeout 120 "$bin/zcrecv" --listen "$addr:0" "$@" >"$tmp/recv.out" 2>"$tmp/recv.err" &
	recv_pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's/^zcrecv: listening on .*:\([0-9]*\)$/\1/p' "$tmp/recv.err")
		[ -n "$port" ] && return 0
		kill -0 $recv_pid 2>/dev/null || break
		sleep 0.05
	done
	echo "zcrecv did not start: $(cat "$tmp/recv.err")" >"$tmp/log"
	return 1
}

# transfer ADDR "SEND ARGS" "RECV ARGS": one stream; sets $send_rc, $recv_rc.
# $send_in is the sender's stdin (default /dev/null).
transfer() {
	local addr=$1 connect
	send_rc=99 recv_rc=99
	# shellcheck disable=SC2086
	start_recv "$addr" $3 || return 1
	case $addr in
	*:*) connect="[$addr]:$port" ;;
	*) connect="$addr:$port" ;;
	esac
	# shellcheck disable=SC2086
	timeout 120 "$bin/zcsend" --connect "$connect" $2 <"${send_in:-/dev/null}" \
		>"$tmp/send.out" 2>"$tmp/send.err"
	send_rc=$?
	wait $recv_pid
	recv_rc=$?
	{
		echo "zcsend $2 -> $send_rc"; cat "$tmp/send.err" "$tmp/send.out"
		echo "zcrecv $3 -> $recv_rc"; cat "$tmp/recv.err" "$tmp/recv.out"
	} >"$tmp/log"
}

# json FILE EXPR: evaluate a python expression over the JSON object j in FILE.
json() {
	python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(v)
sys.exit(0 if v else 1)' "$1" "$2" 2>&1
}

# A verified TCP transfer of $SIZE: both succeed, sizes and checksums agree.
# check_pair NAME ADDR "SEND ARGS" "RECV ARGS"
check_pair() {
	local name=$1 addr=$2 sargs=$3 rargs=$4
	transfer "$addr" "$sargs --json --checksum" "$rargs --json --checksum --verify"
	status=1
	if [ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ] &&
	   json "$tmp/send.out" "j['bytes'] == $SIZE_BYTES" >>"$tmp/log" &&
	   json "$tmp/recv.out" "j['bytes'] == $SIZE_BYTES and j['verified'] is True" >>"$tmp/log" &&
	   [ "$(json "$tmp/send.out" "j['checksum']")" = "$(json "$tmp/recv.out" "j['checksum']")" ]; then
		status=0
	fi
	result "$name"
}

plan=62
tap_plan $plan

# ---- build ----
if make -s -C "$root/tools" >"$tmp/log" 2>&1 && [ -x "$bin/zcsend" ] && [ -x "$bin/zcrecv" ]; then
	tap_ok "the tools build"
else
	sed 's/^/# /' "$tmp/log"
	tap_fail "the tools build"
	echo "Bail out! no tools"
	exit 1
fi

# ---- --help documents the JSON keys ----
for t in zcsend zcrecv zcproxy; do
	keys=$send_keys
	[ $t = zcrecv ] && keys=$recv_keys
	[ $t = zcproxy ] && keys=$proxy_keys
	status=0
	"$bin/$t" --help >"$tmp/help" 2>&1 || status=1
	for k in $keys; do
		grep -qw -- "$k" "$tmp/help" || { echo "no key $k in --help" >>"$tmp/log"; status=1; }
	done
	cp "$tmp/help" "$tmp/log"
	result "$t --help exits 0 and documents the JSON keys"
done

# ---- argument errors: status 2, one line naming the tool ----
usage_error() {
	local what=$1
	shift
	"$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	local rc=$?
	if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
	   grep -q "^$(basename "$1"): " "$tmp/err" && [ ! -s "$tmp/out" ]; then
		tap_ok "$what: status 2, one line ($(cat "$tmp/err"))"
	else
		echo "# status $rc"; sed 's/^/# /' "$tmp/err" "$tmp/out"
		tap_fail "$what: status 2 and one line"
	fi
}
usage_error "zcsend unknown method" "$bin/zcsend" --connect 127.0.0.1:9 --method teleport
usage_error "zcsend without --connect" "$bin/zcsend" --bytes 1M
usage_error "zcsend bad size suffix" "$bin/zcsend" --connect 127.0.0.1:9 --bytes 12X
usage_error "zcsend bad address" "$bin/zcsend" --connect 127.0.0.1
usage_error "zcsend sendfile without --file" "$bin/zcsend" --connect 127.0.0.1:9 --method sendfile
usage_error "zcsend mmap from stdin" "$bin/zcsend" --connect 127.0.0.1:9 --method mmap -
usage_error "zcsend splice over UDP" "$bin/zcsend" --connect 127.0.0.1:9 --udp --method splice
usage_error "zcsend UDP datagram too large" "$bin/zcsend" --connect 127.0.0.1:9 --udp --msg-size 64K
usage_error "zcsend --notify without zcopy-pool" "$bin/zcsend" --connect 127.0.0.1:9 --notify
usage_error "zcsend unknown option" "$bin/zcsend" --connect 127.0.0.1:9 --frobnicate
usage_error "zcsend --ring below 4" "$bin/zcsend" --connect 127.0.0.1:9 --method zcopy --ring 3
usage_error "zcrecv unknown method" "$bin/zcrecv" --listen 0 --method telepathy
usage_error "zcrecv without --listen" "$bin/zcrecv" --verify
usage_error "zcrecv tcp_zerocopy over UDP" "$bin/zcrecv" --listen 0 --udp --method tcp_zerocopy
usage_error "zcrecv bad timeout" "$bin/zcrecv" --listen 0 --timeout soon
usage_error "zcproxy without UPSTREAM" "$bin/zcproxy" 0
usage_error "zcproxy unknown method" "$bin/zcproxy" --method teleport 0 127.0.0.1:9
usage_error "zcproxy bad upstream" "$bin/zcproxy" 0 127.0.0.1

# ---- a TCP receiver's --timeout covers the wait for its connection ----
# The bench and scripts/profile rely on it when a sender fails before it
# connects; `timeout` only stops a receiver that would wait for ever.
status=1
if start_recv 127.0.0.1 --timeout 1 --json; then
	wait $recv_pid
	recv_rc=$?
	cat "$tmp/recv.err" >"$tmp/log"
	echo "zcrecv -> $recv_rc" >>"$tmp/log"
	[ $recv_rc -eq 1 ] && grep -q "^zcrecv: no connection for 1 s" "$tmp/recv.err" && status=0
fi
result "zcrecv --timeout without a connection fails with status 1"

# proxy_pair NAME METHOD: zcsend -> zcproxy --method METHOD -> zcrecv over
# loopback, $SIZE verified at the end, both checksums and the proxy agreeing.
proxy_pair() {
	local name=$1 m=$2 rport pport= ppid prc
	status=1
	if ! start_recv 127.0.0.1 --json --checksum --verify; then
		result "$name"
		return
	fi
	rport=$port
	: >"$tmp/proxy.err"
	timeout 120 "$bin/zcproxy" --method "$m" --json 127.0.0.1:0 "127.0.0.1:$rport" \
		>"$tmp/proxy.out" 2>"$tmp/proxy.err" &
	ppid=$!
	for _ in $(seq 100); do
		pport=$(sed -n 's/^zcproxy: listening on .*:\([0-9]*\)$/\1/p' "$tmp/proxy.err")
		[ -n "$pport" ] && break
		kill -0 $ppid 2>/dev/null || break
		sleep 0.05
	done
	timeout 120 "$bin/zcsend" --connect "127.0.0.1:${pport:-9}" --bytes $SIZE --json --checksum \
		</dev/null >"$tmp/send.out" 2>"$tmp/send.err"
	send_rc=$?
	wait $ppid
	prc=$?
	wait $recv_pid
	recv_rc=$?
	{
		echo "zcsend -> $send_rc"; cat "$tmp/send.err" "$tmp/send.out"
		echo "zcproxy --method $m -> $prc"; cat "$tmp/proxy.err" "$tmp/proxy.out"
		echo "zcrecv -> $recv_rc"; cat "$tmp/recv.err" "$tmp/recv.out"
	} >"$tmp/log"
	if [ "$send_rc" -eq 0 ] && [ "$prc" -eq 0 ] && [ "$recv_rc" -eq 0 ] &&
	   json "$tmp/proxy.out" "j['up_bytes'] == $SIZE_BYTES and j['down_bytes'] == 0" \
		>>"$tmp/log" &&
	   json "$tmp/recv.out" "j['bytes'] == $SIZE_BYTES and j['verified'] is True" >>"$tmp/log" &&
	   [ "$(json "$tmp/send.out" "j['checksum']")" = "$(json "$tmp/recv.out" "j['checksum']")" ]; then
		status=0
	fi
	result "$name"
}
proxy_pair "zcproxy --method copy relays every byte" copy
proxy_pair "zcproxy --method splice relays every byte" splice

# ---- a pattern file, received from the network, for the file methods ----
transfer 127.0.0.1 "--bytes $SIZE" "--verify --output $tmp/pattern"
status=1
[ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ] && [ "$(stat -c %s "$tmp/pattern")" = $SIZE_BYTES ] &&
	status=0
result "write -> read --output: $SIZE of pattern into a file"

# ---- every method pair without the module, TCP over IPv4 ----
for rm in read tcp_zerocopy; do
	check_pair "TCP IPv4 write -> $rm" 127.0.0.1 "--bytes $SIZE --method write" "--method $rm"
	check_pair "TCP IPv4 mmap -> $rm" 127.0.0.1 "--file $tmp/pattern --method mmap" "--method $rm"
	check_pair "TCP IPv4 sendfile -> $rm" 127.0.0.1 "--file $tmp/pattern --method sendfile" "--method $rm"
	check_pair "TCP IPv4 splice (file) -> $rm" 127.0.0.1 "--file $tmp/pattern --method splice" "--method $rm"
	check_pair "TCP IPv4 splice (vmsplice) -> $rm" 127.0.0.1 "--bytes $SIZE --method splice" "--method $rm"
	check_pair "TCP IPv4 msg_zerocopy -> $rm" 127.0.0.1 "--bytes $SIZE --method msg_zerocopy" "--method $rm"
done

# ---- IPv6 ----
check_pair "TCP IPv6 write -> read" ::1 "--bytes $SIZE --method write" "--method read"
check_pair "TCP IPv6 sendfile -> tcp_zerocopy" ::1 "--file $tmp/pattern --method sendfile" "--method tcp_zerocopy"
check_pair "TCP IPv6 msg_zerocopy (16K messages) -> tcp_zerocopy" ::1 \
	"--bytes $SIZE --method msg_zerocopy --msg-size 16K" "--method tcp_zerocopy"

# ---- UDP: every datagram checked where it belongs; losses counted ----
udp_pair() {
	local name=$1 addr=$2 sargs=$3
	transfer "$addr" "--udp --bytes $SIZE --json --checksum $sargs" "--udp --verify --json --timeout 3"
	status=1
	if [ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ] &&
	   json "$tmp/send.out" "j['bytes'] == $SIZE_BYTES and j['proto'] == 'udp'" >>"$tmp/log" &&
	   json "$tmp/recv.out" "0 < j['bytes'] <= $SIZE_BYTES and j['verified'] is True" >>"$tmp/log"; then
		status=0
		echo "# $name: received $(json "$tmp/recv.out" "j['bytes']"), lost $(json "$tmp/recv.out" "j['lost_bytes']"), ended by $(json "$tmp/recv.out" "j['end']")"
	fi
	result "$name"
}
udp_pair "UDP IPv4 write -> read" 127.0.0.1 "--method write"
udp_pair "UDP IPv6 write -> read" ::1 "--method write"
udp_pair "UDP IPv4 msg_zerocopy (8K datagrams) -> read" 127.0.0.1 "--method msg_zerocopy --msg-size 8K"

# udp_order NAME ORDER EXPR: 1001-byte datagrams of the pattern sent in
# ORDER (their indexes), then EXPR over the receiver's JSON report.
transfer 127.0.0.1 "--bytes 10010" "--output $tmp/stream"
udp_order() {
	python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
sys.stdout.buffer.write(b"".join(d[i * 1001:(i + 1) * 1001] for i in map(int, sys.argv[2].split(","))))' \
		"$tmp/stream" "$2" >"$tmp/dgrams"
	send_in=$tmp/dgrams transfer 127.0.0.1 "--udp - --msg-size 1001 --json" \
		"--udp --verify --json --timeout 3"
	send_in=
	status=1
	[ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ] &&
		json "$tmp/recv.out" "j['verified'] is True and $3" >>"$tmp/log" && status=0
	result "$1"
}
udp_order "UDP --verify: two datagrams swapped: one reordered, nothing lost" 0,1,3,2,4,5 \
	"j['bytes'] == 6006 and j['reordered'] == 1 and j['lost_bytes'] == 0"
udp_order "UDP --verify: one lost, one sent twice: its bytes lost, one reordered" 0,1,2,4,5,4,6 \
	"j['bytes'] == 7007 and j['reordered'] == 1 and j['lost_bytes'] == 1001"
udp_order "UDP --verify: three lost, one of them late: two lost" 0,2,4,6,3,7 \
	"j['reordered'] == 1 and j['lost_bytes'] == 2002"

# ---- JSON: one object with the documented keys ----
transfer 127.0.0.1 "--bytes 1M --json" "--json --checksum"
for side in send recv; do
	keys=$send_keys
	[ $side = recv ] && keys=$recv_keys
	status=1
	if python3 -c 'import json,sys; json.load(sys.stdin)' <"$tmp/$side.out" 2>>"$tmp/log" &&
	   json "$tmp/$side.out" "all(k in j for k in '$keys'.split())" >>"$tmp/log" &&
	   [ "$(wc -l <"$tmp/$side.out")" -eq 1 ]; then
		status=0
	fi
	result "zc$side --json: one object with every documented key"
done

# ---- a corrupted stream is caught, with its offset ----
bad=5000001
transfer 127.0.0.1 "--bytes $SIZE --corrupt-at $bad" "--verify"
status=1
[ "$recv_rc" -eq 1 ] && grep -q "mismatch at stream offset $bad:" "$tmp/recv.err" && status=0
result "read --verify: a corrupted byte fails with status 1 at offset $bad ($(grep -o 'mismatch.*' "$tmp/recv.err"))"

transfer 127.0.0.1 "--bytes $SIZE --corrupt-at $bad --method msg_zerocopy" "--verify --method tcp_zerocopy"
status=1
[ "$recv_rc" -eq 1 ] && grep -q "mismatch at stream offset $bad:" "$tmp/recv.err" && status=0
result "tcp_zerocopy --verify: a corrupted byte fails at offset $bad"

transfer 127.0.0.1 "--udp --bytes 1M --msg-size 1000 --corrupt-at 777777" "--udp --verify --timeout 3"
status=1
[ "$recv_rc" -eq 1 ] && grep -q "mismatch at stream offset 777777:" "$tmp/recv.err" && status=0
result "UDP read --verify: a corrupted byte fails at offset 777777"

# ---- stdin, --output, checksums ----
head -c 3000000 /dev/urandom >"$tmp/random"
send_in=$tmp/random transfer 127.0.0.1 "- --checksum --msg-size 1000" "--checksum --output $tmp/copy"
send_in=
status=1
sum=$(sed -n 's/^checksum (FNV-1a 64): //p' "$tmp/send.out")
[ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ] && cmp -s "$tmp/random" "$tmp/copy" &&
	[ -n "$sum" ] && grep -q "^checksum (FNV-1a 64): $sum$" "$tmp/recv.out" && status=0
result "stdin -> --output: the same bytes and the same checksum"

send_in=$tmp/random transfer 127.0.0.1 "--file -" "--expect-checksum $sum"
send_in=
status=1
[ "$recv_rc" -eq 0 ] && status=0
result "--expect-checksum with the right checksum: status 0"

send_in=$tmp/random transfer 127.0.0.1 "-" "--expect-checksum 0123456789abcdef"
send_in=
status=1
[ "$recv_rc" -eq 1 ] && grep -q "checksum mismatch: received $sum, expected 0123456789abcdef" \
	"$tmp/recv.err" && status=0
result "--expect-checksum with a wrong checksum: status 1 and a message"

# ---- the zcopy methods ----
if [ -e /dev/zcopy ]; then
	check_pair "TCP IPv4 zcopy -> read" 127.0.0.1 "--bytes $SIZE --method zcopy" "--method read"
	check_pair "TCP IPv4 zcopy-pool -> zcopy-recv" 127.0.0.1 "--bytes $SIZE --method zcopy-pool" \
		"--method zcopy-recv"
	check_pair "TCP IPv4 zcopy-pool --notify -> tcp_zerocopy" 127.0.0.1 \
		"--bytes $SIZE --method zcopy-pool --notify" "--method tcp_zerocopy"
	check_pair "TCP IPv6 write -> zcopy-recv" ::1 "--bytes $SIZE" "--method zcopy-recv"
	udp_pair "UDP IPv4 zcopy (8K datagrams) -> read" 127.0.0.1 "--method zcopy --msg-size 8K"
	udp_pair "UDP IPv6 zcopy-pool --notify -> read" ::1 "--method zcopy-pool --notify"
	proxy_pair "zcproxy --method zcopy relays every byte" zcopy
else
	for m in "zcopy -> read" "zcopy-pool -> zcopy-recv" "zcopy-pool --notify -> tcp_zerocopy" \
		 "write -> zcopy-recv"; do
		tap_skip "TCP $m" "no /dev/zcopy"
	done
	for t in "zcsend --connect 127.0.0.1:9 --method zcopy" \
		 "zcrecv --listen 127.0.0.1:0 --method zcopy-recv" \
		 "zcproxy --method zcopy 127.0.0.1:0 127.0.0.1:9"; do
		# shellcheck disable=SC2086
		"$bin"/$t >"$tmp/out" 2>"$tmp/err" </dev/null
		rc=$?
		if [ $rc -eq 1 ] && grep -q "needs /dev/zcopy" "$tmp/err"; then
			tap_ok "without /dev/zcopy, $t: status 1 ($(cat "$tmp/err"))"
		else
			echo "# status $rc"; sed 's/^/# /' "$tmp/err"
			tap_fail "without /dev/zcopy, $t: status 1 and a clear message"
		fi
	done
fi

[ "$tap_n" -eq $plan ] || echo "# planned $plan tests, ran $tap_n"
tap_done
