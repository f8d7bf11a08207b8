#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make bench, inside the VM: every method over every path and message size,
# BENCH_REPS times each. Prints one line "BENCH {json}" per run, for
# scripts/bench-report; lines starting with "#" are progress. Besides the
# tools' own JSON, a run has the whole guest's busy time (busy_s) and the
# TCP segments each side's netns took in and sent out over it (segs).
#
# Environment (scripts/bench sets it):
#   BENCH_PATHS    lo veth nic nic4148 nic9000 proxy (nic: MTU 1500; nic4148
#                  and nic9000: e1000e with header split, see setup_net.sh;
#                  proxy: zcsend in netns peer -> MTU 4148 -> zcproxy here ->
#                  MTU 4168 -> zcrecv in netns far, each BENCH_PROXY_METHODS)
#   BENCH_SIZES    message sizes in bytes (default: the sizes the targets
#                  name, scripts/bench-report)
#   BENCH_REPS     runs per cell
#   BENCH_BYTES    most bytes per zcsend run: a run sends 4096 messages,
#                  at least 16 MiB and at most this (the peers run for
#                  BENCH_SECS instead)
#   BENCH_SECS     seconds per tcp_mmap run (it always sends 32 GiB, and is
#                  stopped after as long)
#   BENCH_PEER_T   msg_zerocopy's and io_uring_zerocopy_tx's -t: they run
#                  0.2 s + this many seconds (default 0; io_uring_zerocopy_tx
#                  at least 1)
#   BENCH_METHODS  the rows to run (default: all of them)
#   BENCH_PROXY_METHODS  the proxy path's rows (default: all three)
#   BENCH_COPY_BELOW  zcopy's copy_below parameter for the run (default:
#                  the module's; 0 pins every send, for the crossover)
#   BENCH_PEER_RX  what receives from the peer senders (msg_zerocopy and
#                  io_uring_zerocopy_tx): read (default: zcrecv --method
#                  read, as for zcsend's rows, so that the whole guest's
#                  figures compare) or discard (msg_zerocopy -r, which
#                  drops the data with MSG_TRUNC: no copy)
#   BENCH_DATA     what zcsend writes into a buffer before sending it:
#                  stamp (default: 8 bytes a page, --stamp) or pattern (the
#                  test pattern, about 2.3 instructions a byte, which every
#                  zcsend method pays and the peers do not)
#   BENCH_NAPI     where e1000e's receive and transmit-completion work runs:
#                  softirq (default: in whichever process the interrupt
#                  found running, which is charged for it) or threaded
#                  (the NICs' NAPI kthreads, /sys/class/net/*/threaded)

set -u
ip() { /usr/bin/ip "$@"; }

PATHS=${BENCH_PATHS:-lo veth nic nic4148 nic9000 proxy}
SIZES=${BENCH_SIZES:-1024 4096 16384 65536 1048576}
REPS=${BENCH_REPS:-3}
BYTES=${BENCH_BYTES:-33554432}
SECS=${BENCH_SECS:-1}
PEER_T=${BENCH_PEER_T:-0}
DATA=${BENCH_DATA:-stamp}
PEER_RX=${BENCH_PEER_RX:-read}
case $PEER_RX in read | discard) ;; *) echo "# bench: BENCH_PEER_RX is read or discard"; exit 1 ;; esac
case $DATA in stamp | pattern) ;; *) echo "# bench: BENCH_DATA is stamp or pattern"; exit 1 ;; esac
NCPU=$(nproc)
NAPI=${BENCH_NAPI:-softirq}
case $NAPI in softirq | threaded) ;; *) echo "# bench: BENCH_NAPI is softirq or threaded"; exit 1 ;; esac
# Whether the host booted the guest with threadirqs (BENCH_IRQS=threaded).
IRQS=inline
case " $(cat /proc/cmdline) " in *" threadirqs "*) IRQS=threaded ;; esac
METHODS=${BENCH_METHODS:-copy mmap sendfile splice msg_zerocopy zcopy zcopy-batch zcopy-fixed zcopy-fixed-batch
	zcopy-pool zcopy-pool-notify zcopy-pool-batch tcp_zerocopy zcopy-recv zcopy-pool+recv
	peer:msg_zerocopy peer:io_uring_zerocopy_tx peer:tcp_mmap}
PROXY_METHODS=${BENCH_PROXY_METHODS:-proxy:copy proxy:splice proxy:zcopy}
# The peers' payload buffer is IP_MAXPACKET (65535 bytes) less headers.
PEER_MAX=65000
FILE=/tmp/bench.dat
T=/tmp/bench
PORT=20000

if [ -n "${BENCH_COPY_BELOW:-}" ]; then
	echo "$BENCH_COPY_BELOW" >/sys/module/zcopy/parameters/copy_below ||
		{ echo "# bench: cannot set copy_below"; exit 1; }
fi
COPY_BELOW=$(cat /sys/module/zcopy/parameters/copy_below 2>/dev/null || echo null)
# /proc/stat counts in USER_HZ, 100 on x86.
HZ=100
BUSY0=0 SEGS0="0 0 0 0"

mkdir -p $T /dev/pts
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
/selftests/zcopy/setup_net.sh >/dev/null || { echo "# bench: no network"; exit 1; }
# With two vCPUs, as two machines would be: the sender and the interrupts
# of the NICs in this netns on CPU 0, the receiver and those of the NICs
# in the others (odd-numbered: setup_net.sh) on CPU 1.
TXCPU= RXCPU=
if [ "$NCPU" -ge 2 ]; then
	TXCPU="taskset -c 0" RXCPU="taskset -c 1"
	awk '/eth[0-9]/ { print $1 + 0, ($0 ~ /eth[1357]/) }' /proc/interrupts |
		while read -r irq cpu; do
			echo "$cpu" >/proc/irq/"$irq"/smp_affinity_list ||
				echo "# bench: IRQ $irq stays where it is"
		done
fi
if [ $NAPI = threaded ]; then
	for ns in "" peer far; do
		${ns:+ip netns exec $ns} sh -c 'for d in /sys/class/net/eth*; do
			echo 1 >$d/threaded || exit 1; done' ||
			{ echo "# bench: cannot thread NAPI${ns:+ in $ns}"; exit 1; }
	done
fi
# mmap and sendfile send a file: BENCH_BYTES of zcsend's pattern, in tmpfs.
head -c "$BYTES" /dev/urandom >$FILE

# path_setup PATH: the receiver's netns and address, the sender's address.
path_setup() {
	case $1 in
	lo) NS= RADDR=127.0.0.1 SADDR=127.0.0.1 ;;
	veth) NS="ip netns exec vpeer" RADDR=198.18.1.2 SADDR=198.18.1.1 ;;
	nic) NS="ip netns exec peer" RADDR=198.18.0.2 SADDR=198.18.0.1 ;;
	nic4148) NS="ip netns exec peer" RADDR=198.18.2.2 SADDR=198.18.2.1 ;;
	nic9000) NS="ip netns exec peer" RADDR=198.18.4.2 SADDR=198.18.4.1 ;;
	proxy) NS= RADDR= SADDR= ;;
	esac
	# tcp_mmap maps whole pages of payload: where the MTU does not make
	# segments of them (loopback, veth), its header comment says to set
	# the MSS to a page plus TCP's timestamp option.
	case $1 in
	lo | veth) MMAP_MSS="-M 4108" ;;
	*) MMAP_MSS= ;;
	esac
}

# busy: the guest's busy CPU time so far, in seconds: every process,
# interrupt and softirq, whoever was charged for it. On one CPU (-icount),
# to the nanosecond: the time since boot less the tickless idle clock of
# /proc/timer_list (idle and iowait sleep), which is whole while the CPU
# reading it runs. Otherwise /proc/stat's ticks, as other CPUs may be idle
# for a while that their clock has not counted yet.
BUSY_CLOCK=ticks
if [ "$(grep -c '^  \.idle_sleeptime' /proc/timer_list 2>/dev/null)" = 1 ]; then
	BUSY_CLOCK=idle
fi
busy() {
	if [ $BUSY_CLOCK = idle ]; then
		awk '/^now at / { now = $3 } /^  \.(idle|iowait)_sleeptime/ { idle += $3 }
		     END { printf "%.9f\n", (now - idle) / 1e9 }' /proc/timer_list
	else
		awk -v hz=$HZ '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz; exit }' \
			/proc/stat
	fi
}

# segs: TCP segments in and out so far (/proc/net/snmp's InSegs and
# OutSegs) in the sender's netns, then in the receiver's ($NS; the same one
# over loopback and the proxy path): four numbers.
segs() {
	for ns in "" "$NS"; do
		$ns awk '/^Tcp:/ { if (!n) { for (i = 2; i <= NF; i++) col[$i] = i; n = 1; next }
			     printf "%s %s ", $col["InSegs"], $col["OutSegs"] }' /proc/net/snmp
	done
}

# emit PATH SIZE METHOD REP TX_JSON_FILE RX_JSON_FILE [EXTRA_JSON]
emit() {
	busy_s=$(awk -v a="$BUSY0" -v b="$(busy)" 'BEGIN { printf "%.6f", b - a }')
	segs=$(echo "$SEGS0 $(segs)" | awk '{ printf "\"tx_in\": %d, \"tx_out\": %d, \"rx_in\": %d, \"rx_out\": %d",
		$5 - $1, $6 - $2, $7 - $3, $8 - $4 }')
	tx=$(tail -n1 "$5" 2>/dev/null)
	rx=$(tail -n1 "$6" 2>/dev/null)
	case $tx in "{"*) ;; *) tx=null ;; esac
	case $rx in "{"*) ;; *) rx=null ;; esac
	echo "BENCH {\"kernel\": \"$(uname -r)\", \"path\": \"$1\", \"size\": $2," \
	     "\"method\": \"$3\", \"rep\": $4, \"copy_below\": $COPY_BELOW, \"data\": \"$DATA\", \"napi\": \"$NAPI\", \"irqs\": \"$IRQS\", \"cpus\": $NCPU," \
	     "\"busy_s\": $busy_s, \"busy_clock\": \"$BUSY_CLOCK\", \"segs\": {$segs}," \
	     "\"tx\": $tx, \"rx\": $rx${7:+, $7}}"
}

# One zcsend -> zcrecv transfer.
run_tools() {
	path=$1 size=$2 method=$3 rep=$4 txm=$5 rxm=$6
	shift 6
	PORT=$((PORT + 1))
	$NS $RXCPU zcrecv --listen "$RADDR:$PORT" --method "$rxm" --timeout 30 --json \
		>$T/rx.json 2>$T/rx.err &
	rpid=$!
	n=$((size * 4096))
	[ $n -ge 16777216 ] || n=16777216
	[ $n -le "$BYTES" ] || n=$BYTES
	$TXCPU zcsend --connect "$RADDR:$PORT" --method "$txm" --msg-size "$size" \
		--bytes $n --"$DATA" --json "$@" >$T/tx.json 2>$T/tx.err
	txs=$?
	wait $rpid
	rxs=$?
	emit "$path" "$size" "$method" "$rep" $T/tx.json $T/rx.json \
		"\"tx_status\": $txs, \"rx_status\": $rxs"
	[ $txs -eq 0 ] && [ $rxs -eq 0 ] ||
		echo "# bench: $path $size $method: zcsend $txs, zcrecv $rxs: $(cat $T/tx.err $T/rx.err | head -n3)"
}

# A peer sender (its options, less the port and the test's name) under
# zctime, which stops it if it hangs, against zcrecv --method read or
# msg_zerocopy -r (BENCH_PEER_RX).
run_msg_zerocopy_rx() {
	path=$1 size=$2 method=$3 rep=$4
	shift 4
	PORT=$((PORT + 1))
	# The receiver runs as long as the sender ($PT, set by run_one).
	if [ "$PEER_RX" = read ]; then
		$NS $RXCPU zcrecv --listen "$RADDR:$PORT" --method read --timeout $((PT + 20)) --json \
			>$T/rx.json 2>$T/rx.err &
	else
		$NS zctime -k $((PT + 20)) msg_zerocopy -4 -t "$PT" -p $PORT -D "$RADDR" -r tcp \
			>$T/rx.out 2>$T/rx.err &
	fi
	rpid=$!
	sleep 0.3
	$TXCPU zctime -k $((PT + 20)) "$@" -p $PORT tcp >$T/tx.out 2>$T/tx.err
	txs=$?
	wait $rpid
	rxs=$?
	grep '^{' $T/tx.err >$T/tx.json
	[ "$PEER_RX" = read ] || grep '^{' $T/rx.err >$T/rx.json
	# Both print "tx=SENDS (...)".
	sends=$(sed -n 's/^tx=\([0-9]*\) .*/\1/p' $T/tx.err)
	emit "$path" "$size" "$method" "$rep" $T/tx.json $T/rx.json \
		"\"tx_status\": $txs, \"rx_status\": $rxs, \"peer_rx\": \"$PEER_RX\",\
 \"peer_bytes\": $((${sends:-0} * ${psize:-$size}))"
	[ $txs -eq 0 ] && [ $rxs -eq 0 ] ||
		echo "# bench: $path $size $method: $(grep -v '^{' $T/tx.err $T/rx.err | head -n3)"
}

# tcp_mmap: a server (TCP_ZEROCOPY_RECEIVE) and a client (MSG_ZEROCOPY)
# that always sends 32 GiB: stopped after BENCH_SECS, the server reports
# what it received.
run_tcp_mmap() {
	path=$1 size=$2 method=$3 rep=$4
	PORT=$((PORT + 1))
	# Its line goes through stdio: on a terminal, it is out before the kill.
	$NS zctime -k $((SECS + 20)) --pty tcp_mmap -4 -s -z $MMAP_MSS -p $PORT >$T/rx.out 2>$T/rx.err &
	rpid=$!
	sleep 0.3
	zctime --kill-after "$SECS" tcp_mmap -4 -z $MMAP_MSS -H "$RADDR" -p $PORT -C "$size" \
		>$T/tx.out 2>$T/tx.err
	txs=$?
	# The server prints its line once the connection ends, then waits for
	# the next one: stop it then.
	i=0
	while ! grep -q '^received' $T/rx.out && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	# zctime itself (ip netns exec may stand between it and $rpid): the
	# client is gone, so the server's is the only one left.
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = zctime ] && kill "${p#/proc/}"
	done
	wait $rpid
	rxs=$?
	grep '^{' $T/tx.err >$T/tx.json
	grep '^{' $T/rx.err >$T/rx.json
	# "received 123 MB (99.99 % mmap'ed) in ..."
	mb=$(sed -n 's/^received \([0-9.e+]*\) MB.*/\1/p' $T/rx.out)
	pct=$(sed -n "s/^received .* MB (\([0-9.e+-]*\) % mmap'ed).*/\1/p" $T/rx.out)
	bytes=$(awk -v mb="${mb:-0}" 'BEGIN { printf "%.0f", mb * 1048576 }')
	emit "$path" "$size" "$method" "$rep" $T/tx.json $T/rx.json \
		"\"tx_status\": $txs, \"rx_status\": $rxs, \"peer_bytes\": $bytes, \"peer_mapped_pct\": ${pct:-null}"
	[ -n "$mb" ] || echo "# bench: $path $size $method: no 'received' line: $(head -n3 $T/rx.out $T/rx.err)"
}

# A client, zcproxy --method $5 and a server, each in a netns of its own:
# zcsend in peer across eth3 -> eth2 (MTU 4148, header split) to the proxy,
# across eth4 -> eth5 to zcrecv in far. The proxy's own report goes with the
# run's.
run_proxy() {
	path=$1 size=$2 method=$3 rep=$4 pm=$5
	PORT=$((PORT + 2))
	ip netns exec far zcrecv --listen "198.18.3.2:$PORT" --method read --timeout 30 --json \
		>$T/rx.json 2>$T/rx.err &
	rpid=$!
	zcproxy --method "$pm" --timeout 30 --json "198.18.2.1:$((PORT + 1))" "198.18.3.2:$PORT" \
		>$T/px.json 2>$T/px.err &
	ppid=$!
	n=$((size * 4096))
	[ $n -ge 16777216 ] || n=16777216
	[ $n -le "$BYTES" ] || n=$BYTES
	ip netns exec peer zcsend --connect "198.18.2.1:$((PORT + 1))" --method write \
		--msg-size "$size" --bytes $n --"$DATA" --json >$T/tx.json 2>$T/tx.err
	txs=$?
	wait $ppid
	pxs=$?
	wait $rpid
	rxs=$?
	px=$(tail -n1 $T/px.json 2>/dev/null)
	case $px in "{"*) ;; *) px=null ;; esac
	emit "$path" "$size" "$method" "$rep" $T/tx.json $T/rx.json \
		"\"tx_status\": $txs, \"rx_status\": $rxs, \"proxy_status\": $pxs, \"proxy\": $px"
	[ $txs -eq 0 ] && [ $pxs -eq 0 ] && [ $rxs -eq 0 ] ||
		echo "# bench: $path $size $method: zcsend $txs, zcproxy $pxs, zcrecv $rxs: $(cat $T/tx.err $T/px.err $T/rx.err | head -n3)"
}

# peer_size SIZE: the message size a peer sends in the SIZE row: SIZE, or
# PEER_MAX in the 64 KiB row (their limit); no row above.
peer_size() {
	if [ "$1" -le $PEER_MAX ]; then
		echo "$1"
	elif [ "$1" -eq 65536 ]; then
		echo $PEER_MAX
	else
		return 1
	fi
}

run_one() {
	path=$1 size=$2 m=$3 rep=$4
	BUSY0=$(busy) SEGS0=$(segs) psize=
	case $m in
	copy) run_tools "$@" write read ;;
	mmap) run_tools "$@" mmap read --file $FILE ;;
	sendfile) run_tools "$@" sendfile read --file $FILE ;;
	splice) run_tools "$@" splice read ;;
	msg_zerocopy) run_tools "$@" msg_zerocopy read ;;
	zcopy) run_tools "$@" zcopy read ;;
	zcopy-fixed) run_tools "$@" zcopy-fixed read ;;
	# As io_uring_zerocopy_tx sends: a registered buffer, 8 sends a call.
	zcopy-fixed-batch) run_tools "$@" zcopy-fixed read --batch 8 ;;
	zcopy-batch) run_tools "$@" zcopy read --batch 16 ;;
	zcopy-pool) run_tools "$@" zcopy-pool read ;;
	zcopy-pool-notify) run_tools "$@" zcopy-pool read --notify ;;
	zcopy-pool-batch) run_tools "$@" zcopy-pool read --notify --batch 16 ;;
	tcp_zerocopy) run_tools "$@" write tcp_zerocopy ;;
	zcopy-recv) run_tools "$@" write zcopy-recv ;;
	zcopy-pool+recv) run_tools "$@" zcopy-pool zcopy-recv --notify ;;
	peer:msg_zerocopy)
		psize=$(peer_size "$size") || return 0
		PT=$PEER_T
		run_msg_zerocopy_rx "$@" msg_zerocopy -4 -t "$PT" -D "$RADDR" \
			-S "$SADDR" -s "$psize" -z ;;
	peer:io_uring_zerocopy_tx)
		psize=$(peer_size "$size") || return 0
		# It divides by its whole seconds of run time: -t 0 would be 0.
		PT=$((PEER_T > 0 ? PEER_T : 1))
		run_msg_zerocopy_rx "$@" io_uring_zerocopy_tx -4 -t "$PT" \
			-D "$RADDR" -s "$psize" ;;
	peer:tcp_mmap) run_tcp_mmap "$@" ;;
	proxy:*) run_proxy "$@" "${m#proxy:}" ;;
	*) echo "# bench: unknown method $m"; return 1 ;;
	esac
}

# The boot's first connect() seeds inet's port-perturbation table (256 KiB
# of random bytes, ChaCha20's work): here, not in the first run's figures.
PORT=$((PORT + 1))
zcrecv --listen "127.0.0.1:$PORT" --method read --timeout 30 >/dev/null 2>&1 &
zcsend --connect "127.0.0.1:$PORT" --method write --msg-size 65536 --bytes 1048576 \
	>/dev/null 2>&1
wait $!

start=$(date +%s)
echo "# bench: $(uname -r): paths $PATHS; sizes $SIZES; $REPS reps; up to $BYTES bytes per zcsend run, $SECS s per tcp_mmap run, peers -t $PEER_T received by $PEER_RX; copy_below $COPY_BELOW; data $DATA; napi $NAPI; irqs $IRQS; $NCPU CPUs"
for path in $PATHS; do
	path_setup "$path"
	methods=$METHODS
	[ "$path" != proxy ] || methods=$PROXY_METHODS
	for size in $SIZES; do
		for rep in $(seq "$REPS"); do
			for m in $methods; do
				run_one "$path" "$size" "$m" "$rep"
			done
		done
		echo "# bench: $path $size done at $(($(date +%s) - start)) s"
	done
done
echo "# bench: finished in $(($(date +%s) - start)) s"
